package org.osfarm.mount;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * Everything {@code osfarm mount} and {@link MountMain} accept.
 *
 * @param source a repository directory or an {@code http(s)://} URL of an osfarm server
 * @param ref a ref name or snapshot id
 * @param mountpoint an existing, empty directory
 * @param cacheDir the disk cache (null: a directory under {@code ~/.cache/osfarm/mounts} for this
 *     mount point)
 * @param cacheSize bound on cached bytes; pinned objects excepted
 * @param pins files listing paths to fetch up front and never evict, one per line
 * @param offline never contact the source
 * @param cacheLocal also copy what is read from a local repository into the disk cache (by default
 *     a local repository, itself a verified store on this host, is read directly and only pinned
 *     objects are cached; useful when the repository sits on a slow or network file system)
 * @param writable scratch directory for a writable overlay, or null
 * @param follow re-resolve {@code ref} every {@code followInterval} and serve the new snapshot
 * @param trust public key file for signature checks, or null
 * @param foreground serve in this process (else a background process serves)
 * @param statsFile rewritten every second with the mount's statistics as one JSON line, or null
 * @param verifier the signature check ({@link SnapshotVerifier#NONE} without {@code --trust})
 */
public record MountOptions(
    String source,
    String ref,
    Path mountpoint,
    Path cacheDir,
    long cacheSize,
    List<Path> pins,
    boolean offline,
    boolean cacheLocal,
    Path writable,
    boolean follow,
    Duration followInterval,
    Path trust,
    boolean foreground,
    Path statsFile,
    SnapshotVerifier verifier) {

  public static final long DEFAULT_CACHE_SIZE = 2L << 30;
  public static final Duration DEFAULT_FOLLOW_INTERVAL = Duration.ofSeconds(30);

  public MountOptions {
    pins = List.copyOf(pins);
    followInterval = followInterval == null ? DEFAULT_FOLLOW_INTERVAL : followInterval;
    if (verifier == null) {
      verifier = trust == null ? SnapshotVerifier.NONE : trustedKeys(trust);
    }
    mountpoint = mountpoint.toAbsolutePath().normalize();
    if (cacheDir == null) {
      cacheDir = defaultCacheDir(mountpoint);
    }
    if (writable != null) {
      writable = writable.toAbsolutePath().normalize();
    }
  }

  /**
   * {@code $XDG_CACHE_HOME/osfarm/mounts/NAME} (else {@code ~/.cache/...}), one per mount point.
   */
  static Path defaultCacheDir(Path mountpoint) {
    String xdg = System.getenv("XDG_CACHE_HOME");
    Path base =
        xdg != null && !xdg.isBlank()
            ? Path.of(xdg)
            : Path.of(System.getProperty("user.home"), ".cache");
    String name =
        org.osfarm.core.Digest.of(
                mountpoint.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8))
            .shortHex(16);
    return base.resolve("osfarm").resolve("mounts").resolve(name);
  }

  /**
   * Parses a size: bytes, or a number with K, M, G or T (powers of 1024), e.g. {@code 2G}.
   *
   * @throws IllegalArgumentException on anything else
   */
  public static long parseSize(String s) {
    String t = s.trim().toUpperCase(java.util.Locale.ROOT);
    if (t.endsWith("B") && t.length() > 1) {
      t = t.substring(0, t.length() - 1);
    }
    long mul = 1;
    if (!t.isEmpty()) {
      switch (t.charAt(t.length() - 1)) {
        case 'K' -> mul = 1L << 10;
        case 'M' -> mul = 1L << 20;
        case 'G' -> mul = 1L << 30;
        case 'T' -> mul = 1L << 40;
        default -> {}
      }
    }
    if (mul != 1) {
      t = t.substring(0, t.length() - 1);
    }
    try {
      double v = Double.parseDouble(t);
      if (v < 0 || Double.isNaN(v)) {
        throw new NumberFormatException();
      }
      return (long) (v * mul);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "not a size: '" + s + "' (bytes, or a number with K, M, G or T, e.g. 2G)");
    }
  }

  /** Parses a duration: seconds, or a number with s, m or h (e.g. {@code 30s}, {@code 5m}). */
  public static Duration parseDuration(String s) {
    String t = s.trim().toLowerCase(java.util.Locale.ROOT);
    try {
      if (t.endsWith("ms")) {
        return Duration.ofMillis(Long.parseLong(t.substring(0, t.length() - 2)));
      }
      char u = t.isEmpty() ? ' ' : t.charAt(t.length() - 1);
      String num = Character.isDigit(u) ? t : t.substring(0, t.length() - 1);
      long v = Long.parseLong(num);
      return switch (u) {
        case 'm' -> Duration.ofMinutes(v);
        case 'h' -> Duration.ofHours(v);
        default -> Duration.ofSeconds(v);
      };
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("not a duration: '" + s + "' (e.g. 30s, 5m)");
    }
  }

  /** Builds options with the defaults of the command line. */
  public static final class Builder {
    private final String source;
    private String ref;
    private final Path mountpoint;
    private Path cacheDir;
    private long cacheSize = DEFAULT_CACHE_SIZE;
    private final List<Path> pins = new java.util.ArrayList<>();
    private boolean offline;
    private boolean cacheLocal;
    private Path writable;
    private boolean follow;
    private Duration followInterval = DEFAULT_FOLLOW_INTERVAL;
    private Path trust;
    private boolean foreground = true;
    private Path statsFile;
    private SnapshotVerifier verifier;

    public Builder(String source, String ref, Path mountpoint) {
      this.source = source;
      this.ref = ref;
      this.mountpoint = mountpoint;
    }

    public Builder ref(String v) {
      ref = v;
      return this;
    }

    public Builder cacheDir(Path v) {
      cacheDir = v;
      return this;
    }

    public Builder cacheSize(long v) {
      cacheSize = v;
      return this;
    }

    public Builder pin(Path v) {
      pins.add(v);
      return this;
    }

    public Builder offline(boolean v) {
      offline = v;
      return this;
    }

    public Builder cacheLocal(boolean v) {
      cacheLocal = v;
      return this;
    }

    public Builder writable(Path v) {
      writable = v;
      return this;
    }

    public Builder follow(boolean v) {
      follow = v;
      return this;
    }

    public Builder followInterval(Duration v) {
      followInterval = v;
      return this;
    }

    public Builder trust(Path v) {
      trust = v;
      return this;
    }

    public Builder foreground(boolean v) {
      foreground = v;
      return this;
    }

    public Builder statsFile(Path v) {
      statsFile = v;
      return this;
    }

    public Builder verifier(SnapshotVerifier v) {
      verifier = v;
      return this;
    }

    public MountOptions build() {
      return new MountOptions(
          source,
          ref,
          mountpoint,
          cacheDir,
          cacheSize,
          pins,
          offline,
          cacheLocal,
          writable,
          follow,
          followInterval,
          trust,
          foreground,
          statsFile,
          verifier);
    }
  }

  private static SnapshotVerifier trustedKeys(Path file) {
    try {
      return new TrustedKeysVerifier(file);
    } catch (java.io.IOException e) {
      throw new IllegalArgumentException(e.getMessage(), e);
    }
  }
}
