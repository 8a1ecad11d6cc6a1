package dev.stasis.cli;

import dev.stasis.compel.Leftovers;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

/** {@code stasis sweep}: repair processes a killed dumper left changed ({@link Leftovers}). */
@Command(
    name = "sweep",
    mixinStandardHelpOptions = true,
    description =
        "Repair processes a killed dump left changed: restore their registers and text from the"
            + " journal ($STASIS_STATE_DIR, default /run/stasis/injections) and unmap every"
            + " /memfd:stasis mapping.")
public final class SweepCommand implements Callable<Integer> {
  @Override
  public Integer call() throws Exception {
    int n = Leftovers.sweep(System.err, true);
    System.out.println("swept: " + n + " process(es) repaired");
    return 0;
  }
}
