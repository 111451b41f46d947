package org.osfarm.catalog;

/**
 * How a package differs between two images.
 *
 * @param kind what happened
 * @param before the package in the first image (null when added)
 * @param after the package in the second image (null when removed)
 */
public record PackageChange(Kind kind, String name, PackageInfo before, PackageInfo after) {
  /** Added, removed, upgraded, downgraded, or changed otherwise (same version, other build). */
  public enum Kind {
    ADDED,
    REMOVED,
    UPGRADED,
    DOWNGRADED
  }
}
