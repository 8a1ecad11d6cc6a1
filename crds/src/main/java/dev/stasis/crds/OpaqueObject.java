package dev.stasis.crds;

/**
 * Schema stand-in for a field kept as an object of any shape ({@code type: object} with {@code
 * x-kubernetes-preserve-unknown-fields}): an embedded pod template would otherwise pull the whole
 * Pod schema into the CRD.
 */
final class OpaqueObject {
  private OpaqueObject() {}
}
