/*
 * The parasite: runs inside the target, in trap mode, one command at a time. Freestanding: no
 * libc, no globals, no relocations; every kernel service is a raw system call.
 */
#include "parasite-abi.h"

#define NR_brk 12
#define NR_rt_sigaction 13
#define NR_getitimer 36
#define NR_getpid 39
#define NR_umask 95
#define NR_getgroups 115
#define NR_getresuid 118
#define NR_getresgid 120
#define NR_getpgid 121
#define NR_setfsuid 122
#define NR_setfsgid 123
#define NR_getsid 124
#define NR_capget 125
#define NR_sigaltstack 131
#define NR_prctl 157
#define NR_gettid 186

#define PR_GET_PDEATHSIG 2
#define PR_GET_DUMPABLE 3
#define PR_CAPBSET_READ 23
#define PR_GET_SECUREBITS 27
#define PR_GET_NO_NEW_PRIVS 39
#define PR_GET_TID_ADDRESS 40
#define PR_GET_THP_DISABLE 42
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_IS_SET 1

#define LINUX_CAPABILITY_VERSION_3 0x20080522
#define SIGKILL 9
#define SIGSTOP 19
#define EINVAL 22

static inline long sys6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;
	register long r9 __asm__("r9") = a6;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#define sys0(n) sys6(n, 0, 0, 0, 0, 0, 0)
#define sys1(n, a) sys6(n, (long)(a), 0, 0, 0, 0, 0)
#define sys2(n, a, b) sys6(n, (long)(a), (long)(b), 0, 0, 0, 0)
#define sys3(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define sys4(n, a, b, c, d) sys6(n, (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

/* a raw syscall result in [-4095, -1] is -errno */
static inline int failed(long r)
{
	return r < 0 && r >= -4095;
}

#define CHECK(h, n, expr)                                                                          \
	do {                                                                                       \
		long r_ = (expr);                                                                  \
		if (failed(r_)) {                                                                  \
			(h)->step = (n);                                                           \
			return (int)r_;                                                            \
		}                                                                                  \
	} while (0)

struct stack {
	uint64_t sp;
	int32_t flags;
	uint32_t pad;
	uint64_t size;
};

struct cap_header {
	uint32_t version;
	int32_t pid;
};

struct cap_data {
	uint32_t effective, permitted, inheritable;
};

static int dump_thread(struct parasite_header *h, struct parasite_thread_answer *a)
{
	struct stack ss;
	struct cap_header ch = { LINUX_CAPABILITY_VERSION_3, 0 };
	struct cap_data cd[2];
	uint64_t tid_addr = 0;
	int pdeath = 0;
	long r;
	int i;

	CHECK(h, 1, r = sys0(NR_gettid));
	a->tid = (int32_t)r;
	CHECK(h, 2, sys2(NR_sigaltstack, 0, &ss));
	a->sas_sp = ss.sp;
	a->sas_size = ss.size;
	a->sas_flags = ss.flags;
	CHECK(h, 3, sys3(NR_getresuid, &a->uid, &a->euid, &a->suid));
	CHECK(h, 4, sys3(NR_getresgid, &a->gid, &a->egid, &a->sgid));
	/* an invalid id changes nothing and returns the current one */
	CHECK(h, 5, r = sys1(NR_setfsuid, -1L));
	a->fsuid = (uint32_t)r;
	CHECK(h, 6, r = sys1(NR_setfsgid, -1L));
	a->fsgid = (uint32_t)r;
	CHECK(h, 7, sys2(NR_capget, &ch, cd));
	a->cap_inh = cd[0].inheritable | ((uint64_t)cd[1].inheritable << 32);
	a->cap_prm = cd[0].permitted | ((uint64_t)cd[1].permitted << 32);
	a->cap_eff = cd[0].effective | ((uint64_t)cd[1].effective << 32);
	/* capabilities past the last one the kernel knows answer EINVAL */
	a->cap_bnd = 0;
	for (i = 0; i < 64; i++) {
		r = sys2(NR_prctl, PR_CAPBSET_READ, i);
		if (r == -EINVAL)
			break;
		CHECK(h, 8, r);
		if (r)
			a->cap_bnd |= 1ULL << i;
	}
	a->cap_amb = 0;
	for (i = 0; i < 64; i++) {
		r = sys6(NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, i, 0, 0, 0);
		if (r == -EINVAL)
			break;
		CHECK(h, 9, r);
		if (r)
			a->cap_amb |= 1ULL << i;
	}
	CHECK(h, 10, r = sys1(NR_prctl, PR_GET_SECUREBITS));
	a->secbits = (uint32_t)r;
	CHECK(h, 11, r = sys1(NR_prctl, PR_GET_NO_NEW_PRIVS));
	a->no_new_privs = (uint32_t)r;
	CHECK(h, 12, r = sys2(NR_getgroups, PARASITE_MAX_GROUPS, a->groups));
	a->ngroups = (uint32_t)r;
	CHECK(h, 13, sys2(NR_prctl, PR_GET_TID_ADDRESS, &tid_addr));
	a->tid_address = tid_addr;
	CHECK(h, 14, sys2(NR_prctl, PR_GET_PDEATHSIG, &pdeath));
	a->pdeath_sig = pdeath;
	return 0;
}

static int dump_misc(struct parasite_header *h, struct parasite_misc_answer *a)
{
	long r;

	CHECK(h, 1, r = sys1(NR_brk, 0));
	a->brk = (uint64_t)r;
	/* umask can only be read by setting it: set 0, then put the old value straight back */
	r = sys1(NR_umask, 0);
	a->umask = (uint32_t)r;
	CHECK(h, 2, sys1(NR_umask, r));
	CHECK(h, 3, r = sys1(NR_prctl, PR_GET_DUMPABLE));
	a->dumpable = (int32_t)r;
	CHECK(h, 4, r = sys0(NR_getpid));
	a->pid = (int32_t)r;
	CHECK(h, 5, r = sys1(NR_getsid, 0));
	a->sid = (int32_t)r;
	CHECK(h, 6, r = sys1(NR_getpgid, 0));
	a->pgid = (int32_t)r;
	CHECK(h, 7, r = sys1(NR_prctl, PR_GET_THP_DISABLE));
	a->thp_disabled = (int32_t)r;
	return 0;
}

static int dump_sigacts(struct parasite_header *h, struct parasite_sigacts_answer *a)
{
	int sig;

	for (sig = 1; sig <= PARASITE_NSIG; sig++) {
		struct parasite_sigaction *act = &a->act[sig - 1];

		act->handler = act->flags = act->restorer = act->mask = 0;
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		CHECK(h, sig, sys4(NR_rt_sigaction, sig, 0, act, sizeof(act->mask)));
	}
	return 0;
}

static int dump_itimers(struct parasite_header *h, struct parasite_itimers_answer *a)
{
	int which;

	for (which = 0; which < 3; which++)
		CHECK(h, which + 1, sys2(NR_getitimer, which, &a->timer[which]));
	return 0;
}

/* the parts in order; a failed part's step is moved into its range (see DUMP_PROCESS) */
static int dump_process(struct parasite_header *h, struct parasite_process_answer *a)
{
	int part = 1;
	int r = dump_misc(h, &a->misc);

	if (!r) {
		part = 2;
		r = dump_sigacts(h, &a->sigacts);
	}
	if (!r) {
		part = 3;
		r = dump_itimers(h, &a->itimers);
	}
	if (!r) {
		part = 4;
		r = dump_thread(h, &a->thread);
	}
	if (r)
		h->step += part * PARASITE_STEP_PART;
	return r;
}

void parasite_main(struct parasite_header *h)
{
	void *answer = (char *)h + PARASITE_ANSWER_OFFSET;
	int status;

	if (h->magic != PARASITE_MAGIC)
		return; /* status stays PENDING: the agent reports a corrupt area */
	h->step = 0;
	switch (h->command) {
	case PARASITE_CMD_DUMP_THREAD:
		status = dump_thread(h, answer);
		break;
	case PARASITE_CMD_DUMP_PROCESS:
		status = dump_process(h, answer);
		break;
	default:
		status = PARASITE_STATUS_BAD_COMMAND;
	}
	/*
	 * The agent watches this word while the thread runs (it is not stopped at our system calls)
	 * and reads the answer once it changes: stored last, after every store of the answer.
	 */
	__atomic_store_n(&h->status, status, __ATOMIC_RELEASE);
}

_Static_assert(PARASITE_ANSWER_OFFSET >= sizeof(struct parasite_header), "header fits");
_Static_assert(PARASITE_ANSWER_OFFSET + sizeof(struct parasite_process_answer) + PARASITE_STACK_SIZE <=
		       PARASITE_AREA_SIZE,
	       "answers and stack fit the area");
_Static_assert(PARASITE_AREA_SIZE % 4096 == 0, "area is whole pages");
