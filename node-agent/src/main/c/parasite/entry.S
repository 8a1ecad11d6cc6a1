/*
 * Entry of the blob, placed at offset 0 by the linker script. The agent sets %rdi = area and
 * %rsp = top of the area's stack (16-byte aligned), so the call below is an ordinary SysV call.
 * Afterwards the thread parks: pause() in a loop (every signal but SIGTRAP is blocked while a
 * command runs). The agent, which continued the thread with PTRACE_CONT, sees the status word
 * that parasite_main stores last change, interrupts the thread (PTRACE_INTERRUPT) on its way into
 * or inside that pause() and puts the registers back; it never lets the thread return from it.
 * There is deliberately no int3: if the agent dies while a command runs, the kernel resumes the
 * thread untraced, and a trap would then kill the target with SIGTRAP; the park loop keeps it
 * asleep until the leftover sweep (Leftovers) restores it.
 */
	.section .text.entry, "ax"
	.globl parasite_entry
parasite_entry:
	call parasite_main
1:
	mov $34, %eax		/* __NR_pause */
	syscall
	jmp 1b
