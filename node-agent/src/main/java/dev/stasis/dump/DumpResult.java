package dev.stasis.dump;

import java.util.Map;

/**
 * A committed dump.
 *
 * @param pid the dumped process
 * @param threads how many threads it had
 * @param pagesWritten pages stored in the pages image
 * @param timingsMs per-phase wall-clock times in milliseconds (freezing, frozen, memdump, ...)
 */
public record DumpResult(int pid, int threads, long pagesWritten, Map<String, Long> timingsMs) {}
