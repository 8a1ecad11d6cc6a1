package dev.stasis.parasite;

import static dev.stasis.parasite.ParasiteAbi.*;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * The parasite's commands (enum parasite_command) with the decoders of their answers, read from the
 * shared area at {@link ParasiteAbi#ANSWER_OFFSET} (the parts of DUMP_PROCESS's at their offsets
 * within it); {@link #stepName(int)} names the call a failed status refers to.
 */
enum ParasiteCommand {
  DUMP_THREAD(1),
  DUMP_PROCESS(2);

  /** DUMP_THREAD's steps, also part 4 of DUMP_PROCESS. */
  private static final String[] THREAD_STEPS = {
    "gettid",
    "sigaltstack",
    "getresuid",
    "getresgid",
    "setfsuid",
    "setfsgid",
    "capget",
    "prctl(PR_CAPBSET_READ)",
    "prctl(PR_CAP_AMBIENT)",
    "prctl(PR_GET_SECUREBITS)",
    "prctl(PR_GET_NO_NEW_PRIVS)",
    "getgroups",
    "prctl(PR_GET_TID_ADDRESS)",
    "prctl(PR_GET_PDEATHSIG)"
  };

  /** Part 1 of DUMP_PROCESS. */
  private static final String[] MISC_STEPS = {
    "brk",
    "umask",
    "prctl(PR_GET_DUMPABLE)",
    "getpid",
    "getsid",
    "getpgid",
    "prctl(PR_GET_THP_DISABLE)"
  };

  /** Part 3 of DUMP_PROCESS (part 2, the sigactions, numbers its steps by signal). */
  private static final String[] ITIMER_STEPS = {
    "getitimer(ITIMER_REAL)", "getitimer(ITIMER_VIRTUAL)", "getitimer(ITIMER_PROF)"
  };

  private final int code;

  ParasiteCommand(int code) {
    this.code = code;
  }

  int code() {
    return code;
  }

  /** The call a failed command names with its step number. */
  String stepName(int step) {
    if (this == DUMP_THREAD) {
      return name(THREAD_STEPS, step);
    }
    int part = step / STEP_PART;
    int s = step % STEP_PART;
    return switch (part) {
      case 1 -> name(MISC_STEPS, s);
      case 2 -> "rt_sigaction(" + s + ")";
      case 3 -> name(ITIMER_STEPS, s);
      case 4 -> name(THREAD_STEPS, s) + " (leader)";
      default -> "step " + step;
    };
  }

  private static String name(String[] steps, int step) {
    return step >= 1 && step <= steps.length ? steps[step - 1] : "step " + step;
  }

  /** Writes the header of this command; the status starts as PENDING. */
  void encode(ByteBuffer area) {
    area.putInt(HDR_MAGIC, MAGIC);
    area.putInt(HDR_COMMAND, code);
    area.putInt(HDR_STATUS, STATUS_PENDING);
    area.putInt(HDR_STEP, 0);
  }

  /** DUMP_PROCESS's answer: its parts through the decoders of each, at their offsets. */
  static Parasite.ProcessInfo decodeProcess(ByteBuffer area) {
    return new Parasite.ProcessInfo(
        decodeMisc(area, ANSWER_OFFSET + PROC_MISC),
        decodeSigacts(area, ANSWER_OFFSET + PROC_SIGACTS),
        decodeItimers(area, ANSWER_OFFSET + PROC_ITIMERS),
        decodeThread(area, ANSWER_OFFSET + PROC_THREAD));
  }

  /**
   * A thread answer at offset {@code a} of the area (DUMP_THREAD's: {@link
   * ParasiteAbi#ANSWER_OFFSET}).
   */
  static Parasite.ThreadInfo decodeThread(ByteBuffer area, int a) {
    int n = area.getInt(a + TH_NGROUPS);
    if (n < 0 || n > MAX_GROUPS) {
      throw new IllegalStateException("parasite answered " + n + " supplementary groups");
    }
    int[] groups = new int[n];
    for (int i = 0; i < n; i++) {
      groups[i] = area.getInt(a + TH_GROUPS + 4 * i);
    }
    Parasite.Creds creds =
        new Parasite.Creds(
            area.getInt(a + TH_UID),
            area.getInt(a + TH_EUID),
            area.getInt(a + TH_SUID),
            area.getInt(a + TH_FSUID),
            area.getInt(a + TH_GID),
            area.getInt(a + TH_EGID),
            area.getInt(a + TH_SGID),
            area.getInt(a + TH_FSGID),
            area.getLong(a + TH_CAP_INH),
            area.getLong(a + TH_CAP_PRM),
            area.getLong(a + TH_CAP_EFF),
            area.getLong(a + TH_CAP_BND),
            area.getLong(a + TH_CAP_AMB),
            area.getInt(a + TH_SECBITS),
            area.getInt(a + TH_NO_NEW_PRIVS),
            groups);
    return new Parasite.ThreadInfo(
        area.getInt(a + TH_TID),
        area.getLong(a + TH_SAS_SP),
        area.getLong(a + TH_SAS_SIZE),
        area.getInt(a + TH_SAS_FLAGS),
        creds,
        area.getLong(a + TH_TID_ADDRESS),
        area.getInt(a + TH_PDEATH_SIG));
  }

  private static Parasite.MiscInfo decodeMisc(ByteBuffer area, int a) {
    return new Parasite.MiscInfo(
        area.getLong(a + MISC_BRK),
        area.getInt(a + MISC_UMASK),
        area.getInt(a + MISC_DUMPABLE),
        area.getInt(a + MISC_PID),
        area.getInt(a + MISC_SID),
        area.getInt(a + MISC_PGID),
        area.getInt(a + MISC_THP_DISABLED));
  }

  private static List<Parasite.Sigaction> decodeSigacts(ByteBuffer area, int a) {
    List<Parasite.Sigaction> r = new ArrayList<>(NSIG);
    for (int i = 0; i < NSIG; i++) {
      int o = a + i * SA_SIZE;
      r.add(
          new Parasite.Sigaction(
              area.getLong(o + SA_HANDLER),
              area.getLong(o + SA_FLAGS),
              area.getLong(o + SA_RESTORER),
              area.getLong(o + SA_MASK)));
    }
    return r;
  }

  private static List<Parasite.Itimer> decodeItimers(ByteBuffer area, int a) {
    List<Parasite.Itimer> r = new ArrayList<>(3);
    for (int i = 0; i < 3; i++) {
      int o = a + i * IT_SIZE;
      r.add(
          new Parasite.Itimer(
              area.getLong(o + IT_INTERVAL_SEC),
              area.getLong(o + IT_INTERVAL_USEC),
              area.getLong(o + IT_VALUE_SEC),
              area.getLong(o + IT_VALUE_USEC)));
    }
    return r;
  }
}
