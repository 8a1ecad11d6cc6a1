package dev.stasis.dump;

import java.util.Map;

/**
 * A committed dump.
 *
 * @param pid the root of the dumped process tree
 * @param processes how many processes the tree had (the root and its descendants)
 * @param threads how many threads they had in all
 * @param pagesWritten pages stored in the pages image
 * @param timingsMs per-phase wall-clock times in milliseconds (freezing, frozen, memdump, ...)
 * @param warnings limits of this image set a user must know (e.g. not restorable yet), or empty
 */
public record DumpResult(
    int pid,
    int processes,
    int threads,
    long pagesWritten,
    Map<String, Long> timingsMs,
    java.util.List<String> warnings) {}
