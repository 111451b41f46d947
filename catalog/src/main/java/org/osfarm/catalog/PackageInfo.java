package org.osfarm.catalog;

/**
 * One installed package, as the image's {@code var/lib/dpkg/status} records it.
 *
 * @param source the source package (the package's own name when the status names none)
 * @param sourceVersion the source version (the package version when the status names none)
 */
public record PackageInfo(
    String name, String version, String architecture, String source, String sourceVersion) {}
