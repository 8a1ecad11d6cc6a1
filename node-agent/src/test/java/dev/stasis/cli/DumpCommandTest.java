package dev.stasis.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * The plain {@code dump} form is parsed without picocli (start-up time, see Main.runPlainDump):
 * whatever it accepts must come out exactly as picocli parses it, and whatever it is not sure of
 * must be left to picocli.
 */
class DumpCommandTest {

  private static DumpCommand picocli(String... args) {
    DumpCommand c = new DumpCommand();
    new CommandLine(c).parseArgs(Arrays.copyOfRange(args, 1, args.length));
    return c;
  }

  private static String fields(DumpCommand c) {
    return String.join(
        " ",
        "pid=" + c.pid,
        "imagesDir=" + c.imagesDir,
        "to=" + c.to,
        "leaveRunning=" + c.leaveRunning,
        "spoolDir=" + c.spoolDir,
        "freezeTimeout=" + c.freezeTimeout,
        "verbose=" + c.verbose);
  }

  @Test
  void thePlainFormIsParsedExactlyAsPicocliParsesIt() {
    List<String[]> accepted =
        List.of(
            new String[] {"dump", "--pid", "42", "--images-dir", "/tmp/x"},
            new String[] {"dump", "--images-dir", "rel/dir", "--pid", "7"},
            new String[] {"dump", "--pid=42", "--images-dir=/tmp/x", "--leave-running"},
            new String[] {"dump", "-D", "/tmp/x", "--pid", "042", "-v"},
            new String[] {"dump", "--verbose", "--pid", "1", "-D", "a b", "--leave-running"},
            new String[] {"dump", "--pid", "4194304", "--images-dir", "/x/../y/"});
    for (String[] args : accepted) {
      DumpCommand plain = DumpCommand.parsePlain(args);
      assertNotNull(plain, "plain form: " + String.join(" ", args));
      assertEquals(fields(picocli(args)), fields(plain), String.join(" ", args));
    }
  }

  @Test
  void everythingElseIsLeftToPicocli() {
    List<String[]> declined =
        List.of(
            new String[] {"dump"},
            new String[] {"dump", "--help"},
            new String[] {"dump", "--pid", "42", "--images-dir", "/x", "--help"},
            new String[] {"dump", "--pid", "42", "--to", "s3://b/p"},
            new String[] {"dump", "--pid", "42", "--images-dir", "/x", "--compress", "zstd"},
            new String[] {"dump", "--pid", "42", "--images-dir", "/x", "--spool-dir", "/s"},
            new String[] {"dump", "--pid", "42"},
            new String[] {"dump", "--images-dir", "/x"},
            new String[] {"dump", "--pid", "42", "--pid", "43", "--images-dir", "/x"},
            new String[] {"dump", "--pid", "42", "-D", "/x", "--images-dir", "/y"},
            new String[] {"dump", "--pid", "42", "--images-dir", "/x", "-v", "-v"},
            new String[] {"dump", "--pid", "+42", "--images-dir", "/x"},
            new String[] {"dump", "--pid", "0x2a", "--images-dir", "/x"},
            new String[] {"dump", "--pid", "12345678901", "--images-dir", "/x"},
            new String[] {"dump", "--pid", "abc", "--images-dir", "/x"},
            new String[] {"dump", "--pid", "42", "--images-dir"},
            new String[] {"dump", "--pid", "42", "--images-dir", "-v"},
            new String[] {"dump", "--pid", "42", "--images-dir="},
            new String[] {"dump", "--pid", "42", "-D/x"},
            new String[] {"dump", "--pid", "42", "--images-dir", "/x", "--leave-running=true"},
            new String[] {"dump", "--pid", "42", "--images-dir", "/x", "--", "extra"},
            new String[] {"dump", "--pid", "42", "--images-dir", "bad\0path"},
            new String[] {"push", "--pid", "42", "--images-dir", "/x"});
    for (String[] args : declined) {
      assertNull(DumpCommand.parsePlain(args), String.join(" ", args));
    }
  }
}
