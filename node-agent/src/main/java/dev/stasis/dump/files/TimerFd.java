package dev.stasis.dump.files;

import dev.stasis.dump.DumpException;
import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.images.proto.TimerfdEntry;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A timerfd, from fdinfo: clock, expirations not read yet ({@code ticks}), the flags of its last
 * timerfd_settime ({@code settime flags}, octal), the time left until it fires ({@code it_value},
 * relative even for a TFD_TIMER_ABSTIME timer) and its period ({@code it_interval}), each printed
 * as "(sec, nsec)". The judge arms it again at the very end of its restore (an absolute timer gets
 * its clock's current time added back) and sets the ticks with TFD_IOC_SET_TICKS. Only
 * CLOCK_REALTIME and CLOCK_MONOTONIC timers are recognised: the judge refuses other clocks, so the
 * fallback refuses them before the freeze.
 */
public final class TimerFd implements FileKind {
  private static final Pattern PAIR = Pattern.compile("\\(\\s*(\\d+)\\s*,\\s*(\\d+)\\s*\\)");
  static final int CLOCK_REALTIME = 0;
  static final int CLOCK_MONOTONIC = 1;

  @Override
  public boolean recognises(OpenFd fd) {
    if (!"[timerfd]".equals(fd.anonInode()) || fd.info().field("clockid") == null) {
      return false;
    }
    int clock = Integer.parseInt(fd.info().field("clockid"));
    return clock == CLOCK_REALTIME || clock == CLOCK_MONOTONIC;
  }

  @Override
  public FdTypes fdType() {
    return FdTypes.TIMERFD;
  }

  /**
   * A periodic timer that expired and was not read since shows it_value (0, 0): the kernel moves it
   * to its next expiry only when it is read. Written as is, the judge would disarm it, so it is
   * written as due in one period (its next expiry is at most that far away). A disarmed timer shows
   * (0, 0) too, but has no ticks (timerfd_settime clears them).
   */
  @Override
  public FileEntry dump(OpenFd fd, int id) throws DumpException {
    long[] value = pair(fd, "it_value");
    long[] interval = pair(fd, "it_interval");
    long ticks = Long.parseUnsignedLong(fd.info().field("ticks"));
    if (value[0] == 0 && value[1] == 0 && ticks > 0 && (interval[0] | interval[1]) != 0) {
      value = interval.clone();
    }
    return FileEntry.newBuilder()
        .setType(FdTypes.TIMERFD)
        .setId(id)
        .setTfd(
            TimerfdEntry.newBuilder()
                .setId(id)
                .setFlags(fd.openFlags())
                .setFown(FileKinds.noOwner())
                .setClockid(Integer.parseInt(fd.info().field("clockid")))
                .setTicks(ticks)
                .setSettimeFlags(Integer.parseInt(fd.info().field("settime flags"), 8))
                .setVsec(value[0])
                .setVnsec(value[1])
                .setIsec(interval[0])
                .setInsec(interval[1]))
        .build();
  }

  private static long[] pair(OpenFd fd, String key) throws DumpException {
    String v = fd.info().field(key);
    Matcher m = v == null ? null : PAIR.matcher(v);
    if (m == null || !m.matches()) {
      throw new DumpException("fd " + fd.fd() + " timerfd " + key + " unreadable: " + v);
    }
    return new long[] {Long.parseLong(m.group(1)), Long.parseLong(m.group(2))};
  }
}
