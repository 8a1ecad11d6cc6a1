package dev.stasis.parasite;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The Java mirror of src/main/c/parasite/parasite-abi.h: area layout, header fields and answer
 * offsets. {@link #layout()} names each value exactly as the build's abi-layout program prints it
 * into parasite-abi.properties, and ParasiteAbiTest checks they agree.
 */
final class ParasiteAbi {
  static final int MAGIC = 0x53544153;
  static final int STATUS_PENDING = 1;
  static final int STATUS_BAD_COMMAND = 2;

  static final int AREA_SIZE = 320 * 1024;
  static final int STACK_SIZE = 32 * 1024;
  static final int ANSWER_OFFSET = 64;
  static final int MAX_GROUPS = 65536;

  /** A failed DUMP_PROCESS step is part * STEP_PART + the part's own step. */
  static final int STEP_PART = 100;

  // struct parasite_header
  static final int HDR_MAGIC = 0;
  static final int HDR_COMMAND = 4;
  static final int HDR_STATUS = 8;
  static final int HDR_STEP = 12;

  // struct parasite_thread_answer
  static final int TH_TID = 0;
  static final int TH_PDEATH_SIG = 4;
  static final int TH_SAS_SP = 8;
  static final int TH_SAS_SIZE = 16;
  static final int TH_SAS_FLAGS = 24;
  static final int TH_TID_ADDRESS = 32;
  static final int TH_UID = 40;
  static final int TH_EUID = 44;
  static final int TH_SUID = 48;
  static final int TH_FSUID = 52;
  static final int TH_GID = 56;
  static final int TH_EGID = 60;
  static final int TH_SGID = 64;
  static final int TH_FSGID = 68;
  static final int TH_CAP_INH = 72;
  static final int TH_CAP_PRM = 80;
  static final int TH_CAP_EFF = 88;
  static final int TH_CAP_BND = 96;
  static final int TH_CAP_AMB = 104;
  static final int TH_SECBITS = 112;
  static final int TH_NO_NEW_PRIVS = 116;
  static final int TH_NGROUPS = 120;
  static final int TH_GROUPS = 128;

  // struct parasite_misc_answer
  static final int MISC_BRK = 0;
  static final int MISC_UMASK = 8;
  static final int MISC_DUMPABLE = 12;
  static final int MISC_PID = 16;
  static final int MISC_SID = 20;
  static final int MISC_PGID = 24;
  static final int MISC_THP_DISABLED = 28;

  // struct parasite_sigaction (array of NSIG in the sigacts answer)
  static final int SA_HANDLER = 0;
  static final int SA_FLAGS = 8;
  static final int SA_RESTORER = 16;
  static final int SA_MASK = 24;
  static final int SA_SIZE = 32;
  static final int NSIG = 64;

  // struct parasite_itimer (array of 3 in the itimers answer)
  static final int IT_INTERVAL_SEC = 0;
  static final int IT_INTERVAL_USEC = 8;
  static final int IT_VALUE_SEC = 16;
  static final int IT_VALUE_USEC = 24;
  static final int IT_SIZE = 32;

  // struct parasite_process_answer: the parts, each laid out as above
  static final int PROC_MISC = 0;
  static final int PROC_SIGACTS = 32;
  static final int PROC_ITIMERS = 2080;
  static final int PROC_THREAD = 2176;

  private ParasiteAbi() {}

  /** Every value above under the name abi-layout.c prints it with. */
  static Map<String, Long> layout() {
    Map<String, Long> m = new LinkedHashMap<>();
    m.put("magic", (long) MAGIC);
    for (ParasiteCommand c : ParasiteCommand.values()) {
      m.put("cmd." + c.name(), (long) c.code());
    }
    m.put("status.PENDING", (long) STATUS_PENDING);
    m.put("status.BAD_COMMAND", (long) STATUS_BAD_COMMAND);
    m.put("area.size", (long) AREA_SIZE);
    m.put("area.stack_size", (long) STACK_SIZE);
    m.put("area.answer_offset", (long) ANSWER_OFFSET);
    m.put("max_groups", (long) MAX_GROUPS);
    m.put("step_part", (long) STEP_PART);
    put(m, "parasite_header", "magic", HDR_MAGIC, "command", HDR_COMMAND, "status", HDR_STATUS);
    put(m, "parasite_header", "step", HDR_STEP);
    String t = "parasite_thread_answer";
    put(m, t, "tid", TH_TID, "pdeath_sig", TH_PDEATH_SIG, "sas_sp", TH_SAS_SP);
    put(m, t, "sas_size", TH_SAS_SIZE, "sas_flags", TH_SAS_FLAGS, "tid_address", TH_TID_ADDRESS);
    put(m, t, "uid", TH_UID, "euid", TH_EUID, "suid", TH_SUID, "fsuid", TH_FSUID);
    put(m, t, "gid", TH_GID, "egid", TH_EGID, "sgid", TH_SGID, "fsgid", TH_FSGID);
    put(m, t, "cap_inh", TH_CAP_INH, "cap_prm", TH_CAP_PRM, "cap_eff", TH_CAP_EFF);
    put(m, t, "cap_bnd", TH_CAP_BND, "cap_amb", TH_CAP_AMB, "secbits", TH_SECBITS);
    put(m, t, "no_new_privs", TH_NO_NEW_PRIVS, "ngroups", TH_NGROUPS, "groups", TH_GROUPS);
    String mi = "parasite_misc_answer";
    put(m, mi, "brk", MISC_BRK, "umask", MISC_UMASK, "dumpable", MISC_DUMPABLE);
    put(m, mi, "pid", MISC_PID, "sid", MISC_SID, "pgid", MISC_PGID);
    put(m, mi, "thp_disabled", MISC_THP_DISABLED);
    String sa = "parasite_sigaction";
    put(m, sa, "handler", SA_HANDLER, "flags", SA_FLAGS, "restorer", SA_RESTORER, "mask", SA_MASK);
    put(m, sa, "size", SA_SIZE);
    String it = "parasite_itimer";
    put(m, it, "interval_sec", IT_INTERVAL_SEC, "interval_usec", IT_INTERVAL_USEC);
    put(m, it, "value_sec", IT_VALUE_SEC, "value_usec", IT_VALUE_USEC, "size", IT_SIZE);
    String pr = "parasite_process_answer";
    put(m, pr, "misc", PROC_MISC, "sigacts", PROC_SIGACTS, "itimers", PROC_ITIMERS);
    put(m, pr, "thread", PROC_THREAD);
    return m;
  }

  private static void put(Map<String, Long> m, String struct, Object... nameValue) {
    for (int i = 0; i < nameValue.length; i += 2) {
      m.put(struct + "." + nameValue[i], ((Integer) nameValue[i + 1]).longValue());
    }
  }
}
