package dev.stasis.dump;

import com.google.protobuf.ByteString;
import dev.stasis.images.proto.SeccompEntry;
import dev.stasis.images.proto.SeccompFilter;
import dev.stasis.linux.Ptrace;
import java.util.ArrayList;
import java.util.List;

/**
 * seccomp.img: the seccomp filters of every thread of the dump in filter mode, laid out as CRIU's
 * restore walks them. Each thread's chain is appended newest filter first; every older filter's
 * {@code prev} is the 0-based index of the filter written just before it (the next one to install),
 * and the thread's {@code seccomp_filter} is the index of its oldest filter. The restore starts
 * there and installs filter after filter, oldest first, as the process once did, so the chain after
 * restore is the one before the dump. Chains are per thread, not shared.
 */
final class SeccompImage {
  private final List<SeccompFilter> filters = new ArrayList<>();

  /** Appends a thread's filters ({@code oldestFirst}); returns its seccomp_filter index. */
  int addChain(List<Ptrace.SeccompFilter> oldestFirst) throws DumpException {
    if (oldestFirst.isEmpty()) {
      throw new DumpException("a thread in seccomp filter mode reports no filter");
    }
    for (int k = oldestFirst.size() - 1; k >= 0; k--) {
      Ptrace.SeccompFilter f = oldestFirst.get(k);
      SeccompFilter.Builder b =
          SeccompFilter.newBuilder()
              .setFilter(ByteString.copyFrom(f.insns()))
              .setFlags((int) f.flags());
      if (k != oldestFirst.size() - 1) {
        b.setPrev(filters.size() - 1);
      }
      filters.add(b.build());
    }
    return filters.size() - 1;
  }

  SeccompEntry entry() {
    return SeccompEntry.newBuilder().addAllSeccompFilters(filters).build();
  }
}
