/*
 * Entry of the blob, placed at offset 0 by the linker script. The agent sets %rdi = area and
 * %rsp = top of the area's stack (16-byte aligned), so the call below is an ordinary SysV call.
 * int3 hands control back to the tracer; the agent never resumes past it.
 */
	.section .text.entry, "ax"
	.globl parasite_entry
parasite_entry:
	call parasite_main
	int3
	int3
