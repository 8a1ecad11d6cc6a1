/** The Stasis Kubernetes API: Checkpoint (and later Restore) custom resources. */
package dev.stasis.crds;
