package dev.stasis.dump.ns;

import dev.stasis.images.ImageSink;
import dev.stasis.images.ImageType;
import dev.stasis.images.ImageWriter;
import dev.stasis.images.proto.UtsnsEntry;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** utsns-ID.img: the host name and NIS domain name of a UTS namespace. */
final class UtsNamespace {
  private UtsNamespace() {}

  static UtsnsEntry read(int pid) throws IOException {
    return InNamespace.call(
        pid,
        "uts",
        InNamespace.CLONE_NEWUTS,
        () ->
            UtsnsEntry.newBuilder()
                .setNodename(sysctl("hostname"))
                .setDomainname(sysctl("domainname"))
                .build());
  }

  static void write(ImageSink sink, int id, int pid) throws IOException {
    ImageWriter.writeFile(sink, ImageType.UTSNS, id, List.of(read(pid)));
  }

  private static String sysctl(String name) throws IOException {
    String v = Files.readString(Path.of("/proc/sys/kernel/" + name));
    return v.endsWith("\n") ? v.substring(0, v.length() - 1) : v;
  }
}
