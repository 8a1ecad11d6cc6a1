/*
 * The protocol between the Stasis agent (Java, dev.stasis.parasite.ParasiteAbi) and the parasite
 * blob. Included by the freestanding blob and by the host program that prints the layout for the
 * ABI test, so every offset below is checked against the Java side at build time.
 *
 * The agent maps one region into the target: [ blob, page aligned | area of PARASITE_AREA_SIZE ].
 * It writes a command into the area header, points a stopped thread at the blob's entry with
 * %rdi = area and %rsp = area + PARASITE_AREA_SIZE, and continues it. The blob executes the
 * command with raw system calls, writes the answer after the header, stores the status last and
 * parks (entry.S); the agent then interrupts it.
 *
 * All fields are little-endian and naturally aligned; structs are padded explicitly so that the
 * layout does not depend on compiler choices.
 */
#ifndef STASIS_PARASITE_ABI_H
#define STASIS_PARASITE_ABI_H

#include <stdint.h>

#define PARASITE_MAGIC 0x53544153u /* "STAS" */

/*
 * Each command is one round trip of a frozen thread (continued, then interrupted in its park),
 * so a process's own facts come in one: DUMP_PROCESS, run in the leader, answers for the process
 * and for the leader thread at once; DUMP_THREAD only for the other threads.
 */
enum parasite_command {
	PARASITE_CMD_DUMP_THREAD = 1,
	PARASITE_CMD_DUMP_PROCESS = 2,
};

/* status written before the command runs; the blob overwrites it with 0 or -errno */
#define PARASITE_STATUS_PENDING 1
/* status for a command code the blob does not know */
#define PARASITE_STATUS_BAD_COMMAND 2

#define PARASITE_MAX_GROUPS 65536
#define PARASITE_NSIG 64

/* at offset 0 of the area */
struct parasite_header {
	uint32_t magic;   /* in: PARASITE_MAGIC, or the blob refuses to run */
	uint32_t command; /* in: enum parasite_command */
	int32_t status;   /* out: 0, -errno of the failed call, or a PARASITE_STATUS_* */
	uint32_t step;    /* out: which call of the command failed (see the command's steps) */
};

#define PARASITE_ANSWER_OFFSET 64

/*
 * DUMP_THREAD, run in the thread it describes. Steps: 1 gettid, 2 sigaltstack, 3 getresuid,
 * 4 getresgid, 5 setfsuid, 6 setfsgid, 7 capget, 8 capbset, 9 ambient, 10 securebits,
 * 11 no_new_privs, 12 getgroups, 13 tid_address, 14 pdeathsig.
 */
struct parasite_thread_answer {
	int32_t tid;
	int32_t pdeath_sig;
	uint64_t sas_sp;
	uint64_t sas_size;
	int32_t sas_flags;
	uint32_t pad0;
	uint64_t tid_address;
	uint32_t uid, euid, suid, fsuid;
	uint32_t gid, egid, sgid, fsgid;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	uint32_t secbits;
	uint32_t no_new_privs;
	uint32_t ngroups;
	uint32_t pad1;
	uint32_t groups[PARASITE_MAX_GROUPS];
};

/* Misc part of DUMP_PROCESS. Steps: 1 brk, 2 umask, 3 dumpable, 4 getpid, 5 getsid, 6 getpgid, 7 thp_disable. */
struct parasite_misc_answer {
	uint64_t brk;
	uint32_t umask;
	int32_t dumpable;
	int32_t pid, sid, pgid;
	int32_t thp_disabled;
};

/* the kernel's struct sigaction for rt_sigaction on x86-64 with an 8-byte sigset */
struct parasite_sigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

/*
 * Sigactions part of DUMP_PROCESS: entry i is signal i+1; SIGKILL and SIGSTOP stay zero.
 * Step = the signal.
 */
struct parasite_sigacts_answer {
	struct parasite_sigaction act[PARASITE_NSIG];
};

/* struct itimerval: interval then value, each {tv_sec, tv_usec} */
struct parasite_itimer {
	int64_t interval_sec, interval_usec, value_sec, value_usec;
};

/* Itimers part of DUMP_PROCESS: ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF. Step = which + 1. */
struct parasite_itimers_answer {
	struct parasite_itimer timer[3];
};

/*
 * DUMP_PROCESS, run in the leader: the process's misc facts, sigactions and itimers, and the
 * leader's own DUMP_THREAD answer (last: its group list is the long part). A failed step is
 * reported as part * PARASITE_STEP_PART + the part's own step: part 1 misc, 2 sigacts, 3 itimers,
 * 4 thread.
 */
#define PARASITE_STEP_PART 100
struct parasite_process_answer {
	struct parasite_misc_answer misc;
	struct parasite_sigacts_answer sigacts;
	struct parasite_itimers_answer itimers;
	struct parasite_thread_answer thread;
};

/* The area: header, answer, and the stack growing down from its end. */
#define PARASITE_STACK_SIZE (32 * 1024)
#define PARASITE_AREA_SIZE (320 * 1024)

#endif
