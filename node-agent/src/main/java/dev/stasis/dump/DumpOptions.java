package dev.stasis.dump;

import java.util.function.Consumer;

/**
 * What to dump and how.
 *
 * @param pid the process (thread group) to checkpoint
 * @param leaveRunning detach instead of killing the process after a complete dump
 * @param progress receives short progress lines during long phases (pages), or null
 */
public record DumpOptions(int pid, boolean leaveRunning, Consumer<String> progress) {}
