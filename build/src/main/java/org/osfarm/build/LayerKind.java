package org.osfarm.build;

/** The layers of an image, bottom to top (OS Farm's stages, generalized). */
public enum LayerKind {
  /** The class's minimal system (mmdebstrap's variant, e.g. minbase). */
  CORE,
  /** core plus the class's base group. */
  BASE,
  /** plus the user's packages, groups, repositories, files, users and scripts. */
  IMAGE,
  /** plus appliance rules: enabled services, first-boot personalization scripts. */
  APPLIANCE;

  public String label() {
    return name().toLowerCase(java.util.Locale.ROOT);
  }
}
