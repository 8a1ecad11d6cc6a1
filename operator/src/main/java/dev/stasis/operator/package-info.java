/** The Stasis operator: reconciles Checkpoint resources and dispatches work to node agents. */
package dev.stasis.operator;
