package dev.stasis.images;

import com.google.protobuf.ByteString;
import com.google.protobuf.Message;
import dev.stasis.images.proto.CoreEntry;
import dev.stasis.images.proto.CredsEntry;
import dev.stasis.images.proto.DumpStatsEntry;
import dev.stasis.images.proto.EventfdFileEntry;
import dev.stasis.images.proto.FdTypes;
import dev.stasis.images.proto.FdinfoEntry;
import dev.stasis.images.proto.FifoEntry;
import dev.stasis.images.proto.FileEntry;
import dev.stasis.images.proto.FownEntry;
import dev.stasis.images.proto.FsEntry;
import dev.stasis.images.proto.InventoryEntry;
import dev.stasis.images.proto.ItimerEntry;
import dev.stasis.images.proto.Lsmtype;
import dev.stasis.images.proto.MmEntry;
import dev.stasis.images.proto.NsFileEntry;
import dev.stasis.images.proto.PagemapEntry;
import dev.stasis.images.proto.PagemapHead;
import dev.stasis.images.proto.PipeDataEntry;
import dev.stasis.images.proto.PipeEntry;
import dev.stasis.images.proto.PstreeEntry;
import dev.stasis.images.proto.RegFileEntry;
import dev.stasis.images.proto.RlimitEntry;
import dev.stasis.images.proto.RseqEntry;
import dev.stasis.images.proto.SaEntry;
import dev.stasis.images.proto.SeccompEntry;
import dev.stasis.images.proto.SeccompFilter;
import dev.stasis.images.proto.SeccompMode;
import dev.stasis.images.proto.SignalQueueEntry;
import dev.stasis.images.proto.StatsEntry;
import dev.stasis.images.proto.TaskCoreEntry;
import dev.stasis.images.proto.TaskKobjIdsEntry;
import dev.stasis.images.proto.TaskRlimitsEntry;
import dev.stasis.images.proto.TaskTimersEntry;
import dev.stasis.images.proto.ThreadCoreEntry;
import dev.stasis.images.proto.ThreadInfoX86;
import dev.stasis.images.proto.ThreadSasEntry;
import dev.stasis.images.proto.TimensEntry;
import dev.stasis.images.proto.Timespec;
import dev.stasis.images.proto.UserDescT;
import dev.stasis.images.proto.UserX86FpregsEntry;
import dev.stasis.images.proto.UserX86RegsEntry;
import dev.stasis.images.proto.UserX86RegsMode;
import dev.stasis.images.proto.UserX86XsaveEntry;
import dev.stasis.images.proto.VmaEntry;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * A complete, consistent image set of one two-threaded process (pid {@link #PID}, thread {@link
 * #TID}) built with our protos and written with {@link ImageWriter}: the shape a Stasis dump has.
 * Used by {@link CritDecodeIT} (crit must decode it) and {@link ImageSetVerifierTest}.
 */
final class SyntheticImageSet {
  static final int PID = 4242;
  static final int TID = 4243;
  static final long CODE = 0x555555554000L;
  static final long ANON = 0x7f0000001000L;
  static final String PIPE_BYTES = "bytes in a pipe";

  private SyntheticImageSet() {}

  static TaskKobjIdsEntry ids(int vm) {
    return TaskKobjIdsEntry.newBuilder()
        .setVmId(vm)
        .setFilesId(vm)
        .setFsId(vm)
        .setSighandId(vm)
        .setPidNsId(1)
        .setNetNsId(2)
        .setIpcNsId(3)
        .setUtsNsId(4)
        .setTimeNsId(5)
        .setMntNsId(6)
        .setUserNsId(7)
        .setCgroupNsId(8)
        .build();
  }

  static FownEntry fown() {
    return FownEntry.newBuilder().setUid(0).setEuid(0).setSignum(0).setPidType(0).setPid(0).build();
  }

  static CoreEntry core(int tid, boolean leader) {
    UserX86RegsEntry.Builder regs = UserX86RegsEntry.newBuilder();
    // Fill all 27 registers with distinct values: field n gets 0x1000 + n.
    for (var f : UserX86RegsEntry.getDescriptor().getFields()) {
      if (f.getNumber() <= 27) {
        regs.setField(f, 0x1000L + f.getNumber());
      }
    }
    regs.setIp(CODE + 0x1234).setCs(0x33).setSs(0x2b).setMode(UserX86RegsMode.NATIVE);
    UserX86FpregsEntry.Builder fp =
        UserX86FpregsEntry.newBuilder()
            .setCwd(0x37f)
            .setSwd(0)
            .setTwd(0)
            .setFop(0)
            .setRip(0)
            .setRdp(0)
            .setMxcsr(0x1f80)
            .setMxcsrMask(0x2ffff)
            .addAllStSpace(Collections.nCopies(32, 0))
            .addAllXmmSpace(Collections.nCopies(64, 7))
            .setXsave(
                UserX86XsaveEntry.newBuilder()
                    .setXstateBv(0x7)
                    .addAllYmmhSpace(Collections.nCopies(64, 9)));
    ThreadInfoX86.Builder ti =
        ThreadInfoX86.newBuilder().setClearTidAddr(ANON + 0x10).setGpregs(regs).setFpregs(fp);
    for (int e = 12; e <= 14; e++) {
      ti.addTls(
          UserDescT.newBuilder()
              .setEntryNumber(e)
              .setBaseAddr(0)
              .setLimit(0)
              .setSeg32Bit(false)
              .setContentsH(false)
              .setContentsL(false)
              .setReadExecOnly(true)
              .setLimitInPages(false)
              .setSegNotPresent(true)
              .setUsable(false));
    }
    ThreadCoreEntry.Builder tc =
        ThreadCoreEntry.newBuilder()
            .setFutexRla(ANON + 0x20)
            .setFutexRlaLen(24)
            .setSchedNice(0)
            .setSchedPolicy(0)
            .setBlkSigset(1L << 9)
            .setSas(ThreadSasEntry.newBuilder().setSsSp(0).setSsSize(0).setSsFlags(2))
            .setSignalsP(SignalQueueEntry.getDefaultInstance())
            .setCreds(
                CredsEntry.newBuilder()
                    .setUid(0)
                    .setGid(0)
                    .setEuid(0)
                    .setEgid(0)
                    .setSuid(0)
                    .setSgid(0)
                    .setFsuid(0)
                    .setFsgid(0)
                    .addAllCapInh(List.of(0, 0))
                    .addAllCapPrm(List.of(0xffffffff, 0x1ff))
                    .addAllCapEff(List.of(0xffffffff, 0x1ff))
                    .addAllCapBnd(List.of(0xffffffff, 0x1ff))
                    .setSecbits(0)
                    .addGroups(0))
            .setSeccompMode(SeccompMode.SECCOMP_FILTER)
            .setSeccompFilter(1)
            .setComm(leader ? "stasis-target" : "worker")
            .setRseqEntry(
                RseqEntry.newBuilder()
                    .setRseqAbiPointer(ANON + 0x40)
                    .setRseqAbiSize(32)
                    .setSignature(0x53053053));
    CoreEntry.Builder c =
        CoreEntry.newBuilder().setMtype(CoreEntry.March.X86_64).setThreadInfo(ti).setThreadCore(tc);
    if (leader) {
      TaskCoreEntry.Builder task =
          TaskCoreEntry.newBuilder()
              .setTaskState(TaskState.ALIVE)
              .setExitCode(0)
              .setPersonality(0)
              .setFlags(0x400000)
              .setBlkSigset(0)
              .setComm("stasis-target")
              .setTimers(
                  TaskTimersEntry.newBuilder()
                      .setReal(itimer(3600))
                      .setVirt(itimer(0))
                      .setProf(itimer(0)))
              .setSignalsS(SignalQueueEntry.getDefaultInstance())
              .setLoginuid(-1)
              .setOomScoreAdj(0)
              .setChildSubreaper(false);
      TaskRlimitsEntry.Builder rl = TaskRlimitsEntry.newBuilder();
      for (int i = 0; i < 16; i++) {
        rl.addRlimits(RlimitEntry.newBuilder().setCur(i == 7 ? 1024 : -1).setMax(-1));
      }
      task.setRlimits(rl);
      for (int sig = 1; sig <= 64; sig++) {
        if (sig != 9 && sig != 19) {
          task.addSigactions(
              SaEntry.newBuilder()
                  .setSigaction(sig == 10 ? CODE + 0x500 : 0)
                  .setFlags(sig == 10 ? 0x04000000L : 0)
                  .setRestorer(sig == 10 ? CODE + 0x600 : 0)
                  .setMask(0)
                  .setCompatSigaction(false));
        }
      }
      c.setTc(task);
    }
    return c.build();
  }

  static ItimerEntry itimer(long sec) {
    return ItimerEntry.newBuilder().setIsec(sec).setIusec(0).setVsec(sec).setVusec(0).build();
  }

  static VmaEntry vma(long start, long end, int prot, int flags, int status, long shmid, long off) {
    VmaEntry.Builder b =
        VmaEntry.newBuilder()
            .setStart(start)
            .setEnd(end)
            .setPgoff(off)
            .setShmid(shmid)
            .setProt(prot)
            .setFlags(flags)
            .setStatus(status)
            .setFd(-1);
    if ((status & VmaFlags.FILE_PRIVATE) != 0) {
      b.setFdflags(0);
    }
    return b.build();
  }

  static RegFileEntry reg(int id, String name, int flags, long pos) {
    return RegFileEntry.newBuilder()
        .setId(id)
        .setFlags(flags)
        .setPos(pos)
        .setFown(fown())
        .setName(name)
        .setSize(4096)
        .setMode(0100644)
        .build();
  }

  static void write(ImageSink sink) throws IOException {
    ImageWriter.writeFile(
        sink,
        ImageType.INVENTORY,
        List.of(
            InventoryEntry.newBuilder()
                .setImgVersion(ImageType.IMAGES_VERSION)
                .setFdinfoPerId(true)
                .setRootIds(ids(1))
                .setNsPerId(true)
                .setRootCgSet(1)
                .setLsmtype(Lsmtype.NO_LSM)
                .setNetworkLockMethod(0)
                .build()));
    ImageWriter.writeFile(
        sink,
        ImageType.PSTREE,
        List.of(
            PstreeEntry.newBuilder()
                .setPid(PID)
                .setPpid(0)
                .setPgid(PID)
                .setSid(PID)
                .addThreads(PID)
                .addThreads(TID)
                .build()));
    ImageWriter.writeFile(sink, ImageType.CORE, PID, List.of(core(PID, true)));
    ImageWriter.writeFile(sink, ImageType.CORE, TID, List.of(core(TID, false)));
    ImageWriter.writeFile(sink, ImageType.IDS, PID, List.of(ids(2)));
    int prot = 1 | 4; // PROT_READ | PROT_EXEC
    ImageWriter.writeFile(
        sink,
        ImageType.MM,
        PID,
        List.of(
            MmEntry.newBuilder()
                .setMmStartCode(CODE)
                .setMmEndCode(CODE + 0x1000)
                .setMmStartData(CODE + 0x2000)
                .setMmEndData(CODE + 0x2100)
                .setMmStartStack(0x7ffe00001000L)
                .setMmStartBrk(CODE + 0x10000)
                .setMmBrk(CODE + 0x10000)
                .setMmArgStart(0x7ffe00001100L)
                .setMmArgEnd(0x7ffe00001110L)
                .setMmEnvStart(0x7ffe00001110L)
                .setMmEnvEnd(0x7ffe00001200L)
                .setExeFileId(1)
                .addAllMmSavedAuxv(List.of(6L, 4096L, 0L, 0L))
                .addVmas(
                    vma(
                        CODE,
                        CODE + 0x1000,
                        prot,
                        0x02,
                        VmaFlags.AREA_REGULAR | VmaFlags.FILE_PRIVATE,
                        1,
                        0))
                .addVmas(
                    vma(
                        ANON,
                        ANON + 0x2000,
                        1 | 2,
                        0x22,
                        VmaFlags.AREA_REGULAR | VmaFlags.ANON_PRIVATE,
                        0,
                        0))
                .setDumpable(1)
                .setThpDisabled(false)
                .build()));
    try (ImageWriter pm = ImageWriter.create(sink, ImageType.PAGEMAP, PID)) {
      pm.write(PagemapHead.newBuilder().setPagesId(1).build());
      pm.write(
          PagemapEntry.newBuilder()
              .setVaddr(ANON)
              .setNrPages(2)
              .setCompatNrPages(2)
              .setFlags(PagemapFlags.PRESENT | PagemapFlags.LAZY)
              .build());
    }
    try (WritableByteChannel pages = sink.create(ImageType.PAGES.fileName(1))) {
      ByteBuffer two = ByteBuffer.allocate(2 * ImageType.PAGE_SIZE);
      two.put(0, (byte) 0x5a);
      while (two.hasRemaining()) {
        pages.write(two);
      }
    }
    ImageWriter.writeFile(
        sink,
        ImageType.FDINFO,
        2,
        List.of(
            fd(3, FdTypes.REG, 0),
            fd(4, FdTypes.PIPE, 3),
            fd(5, FdTypes.PIPE, 4),
            fd(6, FdTypes.EVENTFD, 5),
            fd(7, FdTypes.FIFO, 6),
            fd(8, FdTypes.NS, 7)));
    List<Message> files = new ArrayList<>();
    files.add(
        FileEntry.newBuilder()
            .setType(FdTypes.REG)
            .setId(1)
            .setReg(reg(1, "/usr/bin/stasis-target", 0, 0))
            .build());
    files.add(
        FileEntry.newBuilder().setType(FdTypes.REG).setId(2).setReg(reg(2, "/", 0, 0)).build());
    files.add(
        FileEntry.newBuilder()
            .setType(FdTypes.REG)
            .setId(3)
            .setReg(reg(3, "/etc/hostname", 0100000, 3))
            .build());
    files.add(pipe(4, 0));
    files.add(pipe(5, 1));
    files.add(
        FileEntry.newBuilder()
            .setType(FdTypes.EVENTFD)
            .setId(6)
            .setEfd(
                EventfdFileEntry.newBuilder().setId(6).setFlags(2).setFown(fown()).setCounter(5))
            .build());
    files.add(
        FileEntry.newBuilder()
            .setType(FdTypes.REG)
            .setId(9)
            .setReg(reg(9, "/tmp/fifo", 0, 0))
            .build());
    files.add(
        FileEntry.newBuilder()
            .setType(FdTypes.FIFO)
            .setId(7)
            .setFifo(FifoEntry.newBuilder().setId(7).setPipeId(777).setRegfId(9))
            .build());
    files.add(
        FileEntry.newBuilder()
            .setType(FdTypes.NS)
            .setId(8)
            .setNsf(NsFileEntry.newBuilder().setId(8).setNsId(2).setNsCflag(0x40000000).setFlags(0))
            .build());
    ImageWriter.writeFile(sink, ImageType.FILES, files);
    ImageWriter.writeFile(
        sink,
        ImageType.FS,
        PID,
        List.of(FsEntry.newBuilder().setCwdId(2).setRootId(2).setUmask(022).build()));
    ImageWriter.writeFile(
        sink,
        ImageType.SECCOMP,
        List.of(
            SeccompEntry.newBuilder()
                .addSeccompFilters(
                    SeccompFilter.newBuilder()
                        // one BPF instruction: ret SECCOMP_RET_ALLOW
                        .setFilter(
                            ByteString.copyFrom(new byte[] {6, 0, 0, 0, 0, 0, (byte) 0xff, 0x7f})))
                .build()));
    ImageWriter.writeFile(
        sink,
        ImageType.TIMENS,
        0,
        List.of(
            TimensEntry.newBuilder()
                .setMonotonic(Timespec.newBuilder().setTvSec(100).setTvNsec(5))
                .setBoottime(Timespec.newBuilder().setTvSec(200).setTvNsec(6))
                .build()));
    try (ImageWriter w = ImageWriter.create(sink, ImageType.PIPES_DATA)) {
      byte[] data = PIPE_BYTES.getBytes(StandardCharsets.US_ASCII);
      w.write(
          PipeDataEntry.newBuilder().setPipeId(555).setBytes(data.length).setSize(65536).build());
      w.writeData(ByteBuffer.wrap(data));
    }
    try (ImageWriter w = ImageWriter.create(sink, ImageType.STATS, "dump")) {
      w.write(
          StatsEntry.newBuilder()
              .setDump(
                  DumpStatsEntry.newBuilder()
                      .setFreezingTime(11)
                      .setFrozenTime(22)
                      .setMemdumpTime(33)
                      .setMemwriteTime(44)
                      .setPagesScanned(55)
                      .setPagesSkippedParent(0)
                      .setPagesWritten(2)
                      .setPagesLazy(0))
              .build());
    }
  }

  static FdinfoEntry fd(int id, FdTypes type, int fd) {
    return FdinfoEntry.newBuilder()
        .setId(id)
        .setFlags(fd > 2 ? 1 : 0)
        .setType(type)
        .setFd(fd)
        .build();
  }

  static FileEntry pipe(int id, int flags) {
    return FileEntry.newBuilder()
        .setType(FdTypes.PIPE)
        .setId(id)
        .setPipe(PipeEntry.newBuilder().setId(id).setPipeId(555).setFlags(flags).setFown(fown()))
        .build();
  }
}
