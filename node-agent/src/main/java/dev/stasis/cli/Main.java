package dev.stasis.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the {@code stasis} command line (the launcher at the repository root). */
@Command(
    name = "stasis",
    mixinStandardHelpOptions = true,
    version = "stasis 0.1.0",
    description = "Checkpoint running processes into CRIU-format images.",
    subcommands = {LsCommand.class, FetchCommand.class, RmCommand.class})
public final class Main implements Runnable {

  @Override
  public void run() {
    new CommandLine(this).usage(System.out);
  }

  public static void main(String[] args) {
    System.exit(new CommandLine(new Main()).execute(args));
  }
}
