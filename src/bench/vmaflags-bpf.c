/* Probe (not product, not a test): reads every VMA's start, end and vm_flags of PID through a BPF
 * task_vma iterator (raw bpf(2), a 17-instruction program; the iterator's function and the
 * vm_area_struct offsets from /sys/kernel/btf/vmlinux), three times, and prints how long each read
 * took, then the VMAs of the first as "start-end flags". Why: the final freeze of a large process
 * spends most of its time reading /proc/PID/smaps (20 ms for 2 GiB, the kernel's walk of the page
 * table) only for VmFlags; the iterator reads the same flags without the walk (0.01-0.05 ms here).
 * vm_flags bits are kernel-internal: a product use must check them against smaps on the node.
 *   gcc -O2 -o vmaflags-bpf src/bench/vmaflags-bpf.c && ./vmaflags-bpf PID      (as root) */
#define _GNU_SOURCE
#include <linux/bpf.h>
#include <linux/btf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>
#include <fcntl.h>
#include <time.h>
#include <sys/syscall.h>

static char *btf; static struct btf_header *hdr; static char *types, *strs;
static uint32_t ntypes; static struct btf_type **byid;

static const char *name(uint32_t off) { return strs + off; }
static size_t extra(struct btf_type *t) {
  int kind = BTF_INFO_KIND(t->info), vlen = BTF_INFO_VLEN(t->info);
  switch (kind) {
  case BTF_KIND_INT: return 4;
  case BTF_KIND_ARRAY: return 12;
  case BTF_KIND_STRUCT: case BTF_KIND_UNION: return vlen * 12;
  case BTF_KIND_ENUM: return vlen * 8;
  case BTF_KIND_FUNC_PROTO: return vlen * 8;
  case BTF_KIND_VAR: return 4;
  case BTF_KIND_DATASEC: return vlen * 12;
  case 17 /* DECL_TAG */: return 4;
  case 19 /* ENUM64 */: return vlen * 12;
  default: return 0;
  }
}
static void load_btf(void) {
  int fd = open("/sys/kernel/btf/vmlinux", O_RDONLY);
  size_t cap = 16 << 20, n = 0; btf = malloc(cap); ssize_t r;
  while ((r = read(fd, btf + n, cap - n)) > 0) n += r;
  close(fd);
  hdr = (struct btf_header *)btf;
  types = btf + hdr->hdr_len + hdr->type_off; strs = btf + hdr->hdr_len + hdr->str_off;
  byid = calloc(1 << 20, sizeof *byid); ntypes = 0;
  for (char *p = types; p < types + hdr->type_len;) {
    struct btf_type *t = (struct btf_type *)p; byid[++ntypes] = t; p += sizeof *t + extra(t);
  }
}
static uint32_t find(int kind, const char *n) {
  for (uint32_t i = 1; i <= ntypes; i++)
    if (BTF_INFO_KIND(byid[i]->info) == kind && !strcmp(name(byid[i]->name_off), n)) return i;
  return 0;
}
/* bit offset of member n in struct id, looking into anonymous struct/union members */
static long member_off(uint32_t id, const char *n) {
  struct btf_type *t = byid[id];
  int vlen = BTF_INFO_VLEN(t->info), kflag = BTF_INFO_KFLAG(t->info);
  struct btf_member *m = (struct btf_member *)(t + 1);
  for (int i = 0; i < vlen; i++) {
    long off = kflag ? BTF_MEMBER_BIT_OFFSET(m[i].offset) : m[i].offset;
    if (m[i].name_off && !strcmp(name(m[i].name_off), n)) return off;
    if (!m[i].name_off) {
      uint32_t tid = m[i].type;
      while (BTF_INFO_KIND(byid[tid]->info) == BTF_KIND_TYPEDEF || BTF_INFO_KIND(byid[tid]->info) == BTF_KIND_CONST || BTF_INFO_KIND(byid[tid]->info) == BTF_KIND_VOLATILE) tid = byid[tid]->type;
      long sub = member_off(tid, n);
      if (sub >= 0) return off + sub;
    }
  }
  return -1;
}
static long sys_bpf(int cmd, union bpf_attr *a) { return syscall(SYS_bpf, cmd, a, sizeof *a); }
#define I(c, d, s, o, i) ((struct bpf_insn){c, d, s, o, i})
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }

int main(int argc, char **argv) {
  int pid = atoi(argv[1]);
  double t0 = now();
  load_btf();
  uint32_t fn = find(BTF_KIND_FUNC, "bpf_iter_task_vma");
  uint32_t vma = find(BTF_KIND_STRUCT, "vm_area_struct");
  long s = member_off(vma, "vm_start") / 8, e = member_off(vma, "vm_end") / 8, f = member_off(vma, "vm_flags") / 8;
  fprintf(stderr, "btf %.1f ms: func %u vma %u start %ld end %ld flags %ld\n", now() - t0, fn, vma, s, e, f);
  struct bpf_insn prog[] = {
    I(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),             /* r6 = ctx */
    I(BPF_LDX | BPF_MEM | BPF_DW, 2, 6, 16, 0),             /* r2 = ctx->vma */
    I(BPF_JMP | BPF_JEQ | BPF_K, 2, 0, 11, 0),              /* if !vma goto out */
    I(BPF_LDX | BPF_MEM | BPF_DW, 3, 2, (short)s, 0),
    I(BPF_STX | BPF_MEM | BPF_DW, 10, 3, -24, 0),
    I(BPF_LDX | BPF_MEM | BPF_DW, 3, 2, (short)e, 0),
    I(BPF_STX | BPF_MEM | BPF_DW, 10, 3, -16, 0),
    I(BPF_LDX | BPF_MEM | BPF_DW, 3, 2, (short)f, 0),
    I(BPF_STX | BPF_MEM | BPF_DW, 10, 3, -8, 0),
    I(BPF_LDX | BPF_MEM | BPF_DW, 1, 6, 0, 0),              /* r1 = ctx->meta */
    I(BPF_LDX | BPF_MEM | BPF_DW, 1, 1, 0, 0),              /* r1 = meta->seq */
    I(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
    I(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -24),           /* r2 = fp - 24 */
    I(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, 24),
    I(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_seq_write),
    I(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),             /* out: return 0 */
    I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
  /* fix the jump: from insn 2 to insn 15 (the mov r0) = +12 */
  prog[2].off = 12;
  static char log[1 << 16];
  union bpf_attr a; memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_TRACING; a.expected_attach_type = BPF_TRACE_ITER;
  a.insns = (uint64_t)(uintptr_t)prog; a.insn_cnt = sizeof prog / sizeof prog[0];
  a.license = (uint64_t)(uintptr_t)"GPL"; a.attach_btf_id = fn;
  a.log_buf = (uint64_t)(uintptr_t)log; a.log_size = sizeof log; a.log_level = 1;
  int pfd = sys_bpf(BPF_PROG_LOAD, &a);
  if (pfd < 0) { perror("prog load"); fprintf(stderr, "%s\n", log); return 1; }
  fprintf(stderr, "loaded %.1f ms\n", now() - t0);
  double t1 = now();
  for (int rep = 0; rep < 3; rep++) {
    t1 = now();
    union bpf_iter_link_info li; memset(&li, 0, sizeof li); li.task.pid = pid;
    memset(&a, 0, sizeof a);
    a.link_create.prog_fd = pfd; a.link_create.attach_type = BPF_TRACE_ITER;
    a.link_create.iter_info = (uint64_t)(uintptr_t)&li; a.link_create.iter_info_len = sizeof li;
    int lfd = sys_bpf(BPF_LINK_CREATE, &a);
    if (lfd < 0) { perror("link"); return 1; }
    memset(&a, 0, sizeof a); a.iter_create.link_fd = lfd;
    int ifd = sys_bpf(BPF_ITER_CREATE, &a);
    if (ifd < 0) { perror("iter"); return 1; }
    static uint64_t buf[1 << 16]; size_t n = 0; ssize_t r;
    while ((r = read(ifd, (char *)buf + n, sizeof buf - n)) > 0) n += r;
    double t2 = now();
    close(ifd); close(lfd);
    fprintf(stderr, "iter: %zu vmas in %.3f ms\n", n / 24, t2 - t1);
    if (rep == 0) for (size_t i = 0; i < n / 24; i++) printf("%lx-%lx %lx\n", buf[3*i], buf[3*i+1], buf[3*i+2]);
  }
  return 0;
}
