/* Host program: prints the parasite ABI layout as properties for the Java ABI test. */
#include <stddef.h>
#include <stdio.h>
#include "parasite-abi.h"

#define P(key, value) printf("%s=%lu\n", key, (unsigned long)(value))
#define OFF(s, f) P(#s "." #f, offsetof(struct s, f))

int main(void)
{
	P("magic", PARASITE_MAGIC);
	P("cmd.DUMP_THREAD", PARASITE_CMD_DUMP_THREAD);
	P("cmd.DUMP_PROCESS", PARASITE_CMD_DUMP_PROCESS);
	P("step_part", PARASITE_STEP_PART);
	P("status.PENDING", PARASITE_STATUS_PENDING);
	P("status.BAD_COMMAND", PARASITE_STATUS_BAD_COMMAND);
	P("area.size", PARASITE_AREA_SIZE);
	P("area.stack_size", PARASITE_STACK_SIZE);
	P("area.answer_offset", PARASITE_ANSWER_OFFSET);
	P("max_groups", PARASITE_MAX_GROUPS);
	OFF(parasite_header, magic);
	OFF(parasite_header, command);
	OFF(parasite_header, status);
	OFF(parasite_header, step);
	OFF(parasite_thread_answer, tid);
	OFF(parasite_thread_answer, pdeath_sig);
	OFF(parasite_thread_answer, sas_sp);
	OFF(parasite_thread_answer, sas_size);
	OFF(parasite_thread_answer, sas_flags);
	OFF(parasite_thread_answer, tid_address);
	OFF(parasite_thread_answer, uid);
	OFF(parasite_thread_answer, euid);
	OFF(parasite_thread_answer, suid);
	OFF(parasite_thread_answer, fsuid);
	OFF(parasite_thread_answer, gid);
	OFF(parasite_thread_answer, egid);
	OFF(parasite_thread_answer, sgid);
	OFF(parasite_thread_answer, fsgid);
	OFF(parasite_thread_answer, cap_inh);
	OFF(parasite_thread_answer, cap_prm);
	OFF(parasite_thread_answer, cap_eff);
	OFF(parasite_thread_answer, cap_bnd);
	OFF(parasite_thread_answer, cap_amb);
	OFF(parasite_thread_answer, secbits);
	OFF(parasite_thread_answer, no_new_privs);
	OFF(parasite_thread_answer, ngroups);
	OFF(parasite_thread_answer, groups);
	OFF(parasite_misc_answer, brk);
	OFF(parasite_misc_answer, umask);
	OFF(parasite_misc_answer, dumpable);
	OFF(parasite_misc_answer, pid);
	OFF(parasite_misc_answer, sid);
	OFF(parasite_misc_answer, pgid);
	OFF(parasite_misc_answer, thp_disabled);
	OFF(parasite_sigaction, handler);
	OFF(parasite_sigaction, flags);
	OFF(parasite_sigaction, restorer);
	OFF(parasite_sigaction, mask);
	P("parasite_sigaction.size", sizeof(struct parasite_sigaction));
	OFF(parasite_itimer, interval_sec);
	OFF(parasite_itimer, interval_usec);
	OFF(parasite_itimer, value_sec);
	OFF(parasite_itimer, value_usec);
	P("parasite_itimer.size", sizeof(struct parasite_itimer));
	OFF(parasite_process_answer, misc);
	OFF(parasite_process_answer, sigacts);
	OFF(parasite_process_answer, itimers);
	OFF(parasite_process_answer, thread);
	return 0;
}
