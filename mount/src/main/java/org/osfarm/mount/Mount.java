package org.osfarm.mount;

import java.io.Closeable;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.cryptomator.jfuse.api.Fuse;
import org.cryptomator.jfuse.api.FuseBuilder;
import org.cryptomator.jfuse.api.FuseMountFailedException;
import org.osfarm.core.Digest;
import org.osfarm.core.NotFoundException;

/**
 * A running mount: the source, the disk cache, the FUSE view and (with {@code --writable}) the
 * overlay on top. {@link #start} returns once everything is mounted; {@link #awaitUnmounted} blocks
 * until someone unmounts it ({@code osfarm umount}, {@code fusermount3 -u}); {@link #close}
 * unmounts and releases the cache.
 *
 * <p>The FUSE view uses libfuse's {@code auto_unmount}: libfuse starts {@code fusermount3}, which
 * unmounts when this process dies, even by SIGKILL, so no stale mount is left behind.
 */
public final class Mount implements Closeable {
  private static final Logger LOG = Logger.getLogger(Mount.class.getName());

  /** The scratch directory's description of its overlay. */
  public static final String SCRATCH_PROPERTIES = "osfarm-scratch.properties";

  private final MountOptions options;
  private final ObjectSource source;
  private final ObjectCache cache;
  private final Path fuseMountpoint;
  private MountFs fs;
  private Fuse fuse;
  private boolean overlayMounted;
  private final ScheduledExecutorService timer;
  private final CountDownLatch unmounted = new CountDownLatch(1);
  private volatile boolean closed;
  private volatile String lastFollowError = "";

  private Mount(MountOptions options, ObjectSource source, ObjectCache cache) {
    this.options = options;
    this.source = source;
    this.cache = cache;
    this.fuseMountpoint =
        options.writable() != null ? options.writable().resolve("lower") : options.mountpoint();
    this.timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "osfarm-mount-timer");
              t.setDaemon(true);
              return t;
            });
  }

  /**
   * Resolves the snapshot, opens the cache, fetches the pins, mounts the view (and the overlay).
   *
   * @throws IOException with a message for the user when any step fails; nothing stays mounted
   */
  public static Mount start(MountOptions o) throws IOException {
    Path mp = o.mountpoint();
    if (!Files.isDirectory(mp)) {
      throw new IOException("mount point " + mp + " is not a directory (create it first)");
    }
    checkNotMounted(mp);
    if (o.writable() != null && o.follow()) {
      throw new IOException(
          "--follow cannot be combined with --writable: the overlay's changes are relative to one"
              + " snapshot; move them with 'osfarm rebase' instead");
    }
    ObjectSource source =
        o.offline() ? new OfflineSource(o.source()) : ObjectSources.open(o.source());
    ObjectCache cache;
    try {
      // A local repository is a verified store on this host: read it directly, cache pins only.
      boolean direct = source instanceof LocalObjectSource && !o.cacheLocal();
      cache = new ObjectCache(o.cacheDir(), o.cacheSize(), source, o.offline(), direct);
    } catch (IOException | RuntimeException e) {
      source.close();
      throw e;
    }
    Mount m = new Mount(o, source, cache);
    try {
      m.mount();
      return m;
    } catch (IOException | RuntimeException e) {
      m.close();
      throw e;
    }
  }

  /** Refuses a mount point that already carries an osfarm mount. */
  static void checkNotMounted(Path mp) throws IOException {
    MountTable.Mount top = MountTable.top(mp);
    if (top != null && (top.type().equals(MountTable.FUSE_TYPE) || isOsfarmOverlay(top))) {
      throw new IOException(mp + " is already an osfarm mount; run 'osfarm umount " + mp + "'");
    }
  }

  private static boolean isOsfarmOverlay(MountTable.Mount m) throws IOException {
    if (!m.type().equals("overlay")) {
      return false;
    }
    String lower = m.option("lowerdir");
    return lower != null && MountTable.isMounted(Path.of(lower), MountTable.FUSE_TYPE);
  }

  private void mount() throws IOException {
    Digest id = resolve();
    SnapshotView view = openView(id);
    if (!options.offline()) {
      cache.releaseEarlierPins();
    }
    Path scratch = options.writable();
    if (scratch != null) {
      prepareScratch(scratch, id);
    }
    FuseBuilder builder = Fuse.builder();
    builder.setLibraryPath(libfuse());
    fs = new MountFs(builder.errno(), cache, view, this::statsJson);
    fuse = builder.build(fs);
    double timeout = options.follow() ? 1.0 : 3600.0;
    String opts =
        String.join(
            ",",
            "ro",
            "fsname=osfarm",
            "subtype=osfarm",
            "auto_unmount",
            "allow_other",
            "default_permissions",
            "kernel_cache",
            "entry_timeout=" + timeout,
            "attr_timeout=" + timeout,
            "negative_timeout=" + timeout);
    try {
      fuse.mount("osfarm", fuseMountpoint, "-o", opts);
    } catch (FuseMountFailedException e) {
      throw new IOException("cannot mount " + fuseMountpoint + ": " + e.getMessage(), e);
    }
    if (scratch != null) {
      mountOverlay(scratch);
      writeScratchProperties(scratch, id);
    }
    timer.scheduleWithFixedDelay(this::tick, 1, 1, TimeUnit.SECONDS);
    if (options.follow()) {
      long ms = Math.max(100, options.followInterval().toMillis());
      timer.scheduleWithFixedDelay(this::follow, ms, ms, TimeUnit.MILLISECONDS);
    }
    writeStats();
    LOG.info(
        "mounted "
            + id.hex()
            + " ("
            + options.ref()
            + " from "
            + source.describe()
            + ") on "
            + options.mountpoint());
  }

  /** The snapshot id; online, remembers a ref's id in the cache so an offline mount finds it. */
  private Digest resolve() throws IOException {
    Path refFile =
        options
            .cacheDir()
            .resolve("refs")
            .resolve(
                Digest.of(
                        (options.source() + "\n" + options.ref()).getBytes(StandardCharsets.UTF_8))
                    .hex());
    if (options.offline()) {
      if (Files.exists(refFile)) {
        return Digest.fromHex(Files.readString(refFile).trim());
      }
      String r = options.ref().toLowerCase(Locale.ROOT);
      if (Digest.isHex(r)) {
        return Digest.fromHex(r);
      }
      throw new IOException(
          "--offline: no earlier mount of '"
              + options.ref()
              + "' from "
              + options.source()
              + " used the cache "
              + options.cacheDir()
              + "; mount it online once (or give the snapshot id)");
    }
    Digest id;
    try {
      id = source.resolve(options.ref());
    } catch (NotFoundException e) {
      throw new IOException(e.getMessage(), e);
    }
    Files.createDirectories(refFile.getParent());
    Path t = refFile.resolveSibling(refFile.getFileName() + ".tmp");
    Files.writeString(t, id.hex() + "\n");
    Files.move(t, refFile, StandardCopyOption.ATOMIC_MOVE);
    return id;
  }

  /** Verifies the snapshot, walks its trees and fetches the pins. */
  private SnapshotView openView(Digest id) throws IOException {
    byte[] bytes = cache.pin(id);
    options.verifier().verify(source, id, bytes);
    SnapshotView view = new SnapshotView(cache, id);
    for (Path pinFile : options.pins()) {
      for (String line : Files.readAllLines(pinFile, StandardCharsets.UTF_8)) {
        String p = line.strip();
        if (p.isEmpty() || p.startsWith("#")) {
          continue;
        }
        view.pin(p.startsWith("/") ? p : "/" + p);
      }
    }
    return view;
  }

  // ---------------------------------------------------------------- writable overlay

  private void prepareScratch(Path scratch, Digest id) throws IOException {
    Path props = scratch.resolve(SCRATCH_PROPERTIES);
    if (Files.exists(props)) {
      Properties p = new Properties();
      try (var in = Files.newBufferedReader(props, StandardCharsets.UTF_8)) {
        p.load(in);
      }
      String base = p.getProperty("base", "");
      if (!base.isEmpty() && !base.equals(id.hex())) {
        throw new IOException(
            "the scratch directory "
                + scratch
                + " holds changes made on snapshot "
                + base
                + ", but '"
                + options.ref()
                + "' is "
                + id.hex()
                + "; mount "
                + base
                + " or move the changes with 'osfarm rebase "
                + scratch
                + " --onto "
                + options.ref()
                + "'");
      }
    }
    for (String d : List.of("upper", "work", "lower")) {
      Files.createDirectories(scratch.resolve(d));
    }
  }

  private void mountOverlay(Path scratch) throws IOException {
    String opts =
        "lowerdir="
            + scratch.resolve("lower")
            + ",upperdir="
            + scratch.resolve("upper")
            + ",workdir="
            + scratch.resolve("work")
            + ",redirect_dir=off,metacopy=off,index=off,xino=off";
    run(
        List.of(
            "mount",
            "-t",
            "overlay",
            "osfarm-overlay",
            "-o",
            opts,
            options.mountpoint().toString()),
        "mount the writable overlay (needs root and overlayfs)");
    overlayMounted = true;
  }

  private void writeScratchProperties(Path scratch, Digest id) throws IOException {
    String text =
        "# written by osfarm mount; osfarm rebase rewrites base\n"
            + "base="
            + id.hex()
            + "\nsource="
            + escape(options.source())
            + "\nref="
            + escape(options.ref())
            + "\n";
    Path t = scratch.resolve(SCRATCH_PROPERTIES + ".tmp");
    Files.writeString(t, text, StandardCharsets.UTF_8);
    Files.move(t, scratch.resolve(SCRATCH_PROPERTIES), StandardCopyOption.ATOMIC_MOVE);
  }

  private static String escape(String v) {
    return v.replace("\\", "\\\\").replace(":", "\\:").replace("=", "\\=");
  }

  static String run(List<String> cmd, String what) throws IOException {
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    Process p;
    try {
      p = pb.start();
    } catch (IOException e) {
      throw new IOException("cannot " + what + ": " + cmd.get(0) + " is not installed", e);
    }
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    try {
      if (p.waitFor() != 0) {
        throw new IOException("cannot " + what + ": " + String.join(" ", cmd) + ": " + out);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted", e);
    }
    return out;
  }

  // ---------------------------------------------------------------- follow, stats

  private void follow() {
    try {
      Digest now = source.resolve(options.ref());
      if (now.equals(fs.view().id())) {
        return;
      }
      SnapshotView v = openView(now);
      fs.switchTo(v);
      lastFollowError = "";
      LOG.info("--follow: " + options.ref() + " moved to " + now.hex() + "; serving it");
    } catch (IOException | RuntimeException e) {
      lastFollowError = String.valueOf(e.getMessage());
      LOG.log(Level.WARNING, "--follow: cannot switch to the new snapshot: " + e.getMessage());
    }
  }

  private void tick() {
    try {
      if (!MountTable.isMounted(fuseMountpoint, MountTable.FUSE_TYPE)) {
        unmounted.countDown();
      }
      writeStats();
      cache.saveIndex();
    } catch (IOException | RuntimeException e) {
      LOG.log(Level.WARNING, "mount housekeeping: " + e.getMessage());
    }
  }

  private void writeStats() {
    Path f = options.statsFile();
    if (f == null) {
      return;
    }
    try {
      Path t = f.resolveSibling(f.getFileName() + ".tmp");
      Files.writeString(t, statsJson() + "\n");
      Files.move(t, f, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      LOG.log(Level.WARNING, "cannot write --stats-file " + f + ": " + e.getMessage());
    }
  }

  /** The mount's statistics as one JSON object (also {@code user.osfarm.stats} on the root). */
  public String statsJson() {
    ObjectCache.Stats s = cache.stats();
    SnapshotView v = fs == null ? null : fs.view();
    StringBuilder sb = new StringBuilder("{");
    field(sb, "snapshot", v == null ? "" : v.id().hex());
    field(sb, "ref", options.ref());
    field(sb, "source", options.source());
    sb.append("\"bytesFetched\":").append(s.bytesFetched());
    sb.append(",\"networkBytes\":").append(source.bytesFetched());
    if (source instanceof LocalObjectSource l) {
      sb.append(",\"storedBytesRead\":").append(l.storedBytesRead());
    }
    sb.append(",\"objectsFetched\":").append(s.objectsFetched());
    sb.append(",\"cacheHits\":").append(s.cacheHits());
    sb.append(",\"cacheBytes\":").append(s.cacheBytes());
    sb.append(",\"cacheObjects\":").append(s.cacheObjects());
    sb.append(",\"cacheMaxBytes\":").append(s.maxBytes());
    sb.append(",\"pinnedBytes\":").append(s.pinnedBytes());
    sb.append(",\"pinnedObjects\":").append(s.pinnedObjects());
    sb.append(",\"evictions\":").append(s.evictions());
    sb.append(",\"fetchErrors\":").append(s.errors());
    sb.append(",\"ioErrors\":").append(fs == null ? 0 : fs.ioErrors());
    sb.append(",\"imageBytes\":").append(v == null ? 0 : v.totalBytes());
    sb.append(",\"treeBytes\":").append(v == null ? 0 : v.treeBytes());
    sb.append(",\"offline\":").append(options.offline());
    sb.append(",\"followError\":\"").append(json(lastFollowError)).append('"');
    return sb.append('}').toString();
  }

  private static void field(StringBuilder sb, String k, String v) {
    sb.append('"').append(k).append("\":\"").append(json(v)).append("\",");
  }

  private static String json(String s) {
    StringBuilder sb = new StringBuilder();
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') {
        sb.append('\\').append(c);
      } else if (c < 0x20) {
        sb.append(String.format("\\u%04x", (int) c));
      } else {
        sb.append(c);
      }
    }
    return sb.toString();
  }

  // ---------------------------------------------------------------- lifecycle

  /** Blocks until the mount is unmounted from outside (or {@link #close} runs). */
  public void awaitUnmounted() throws InterruptedException {
    unmounted.await();
  }

  /** The snapshot served now. */
  public Digest snapshot() {
    return fs.view().id();
  }

  /** Where objects come from. */
  public ObjectSource source() {
    return source;
  }

  /** The cache's counters. */
  public ObjectCache.Stats cacheStats() {
    return cache.stats();
  }

  @Override
  public synchronized void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    timer.shutdownNow();
    List<Throwable> errors = new ArrayList<>();
    if (overlayMounted && MountTable.isMounted(options.mountpoint(), "overlay")) {
      try {
        run(List.of("umount", options.mountpoint().toString()), "unmount the overlay");
      } catch (IOException e) {
        errors.add(e);
      }
    }
    if (fuse != null) {
      // jfuse's close waits 10 s for its loop and then frees the upcall stubs even if a request
      // thread is still inside one, which crashes the JVM when that thread returns. A read waiting
      // on a source that went away (a killed server) is such a thread: fail those waits first and
      // let the reads in progress leave. Closing the source here is safe: nothing may read now.
      source.close();
      boolean idle;
      try {
        idle = fs.awaitNoReads(15_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        idle = false;
      }
      if (!idle) {
        LOG.warning("a read is still in progress; leaving the FUSE session to the kernel");
        try {
          run(List.of("fusermount3", "-u", "-z", fuseMountpoint.toString()), "unmount the view");
        } catch (IOException e) {
          errors.add(e);
        }
        fuse = null;
      }
    }
    if (fuse != null) {
      try {
        fuse.close();
      } catch (TimeoutException e) {
        // Unmounted, but a request thread is still busy (a fetch from a source that went away);
        // it ends with EIO on its own.
        LOG.warning("unmounted; a request still in progress will fail: " + e.getMessage());
      } catch (RuntimeException e) {
        errors.add(e);
      }
    }
    writeStats();
    unmounted.countDown();
    try {
      cache.close();
    } finally {
      source.close();
    }
    if (!errors.isEmpty()) {
      throw new IOException(
          "unmounting " + options.mountpoint() + ": " + errors.get(0), errors.get(0));
    }
  }

  /** Where libfuse3 is: $OSFARM_LIBFUSE, else the usual Debian and other multiarch paths. */
  static String libfuse() throws IOException {
    String env = System.getenv("OSFARM_LIBFUSE");
    if (env != null && !env.isBlank()) {
      return env;
    }
    for (String p :
        List.of(
            "/usr/lib/x86_64-linux-gnu/libfuse3.so.3",
            "/lib/x86_64-linux-gnu/libfuse3.so.3",
            "/usr/lib/aarch64-linux-gnu/libfuse3.so.3",
            "/lib/aarch64-linux-gnu/libfuse3.so.3",
            "/usr/lib64/libfuse3.so.3",
            "/usr/lib/libfuse3.so.3",
            "/lib/libfuse3.so.3")) {
      if (Files.exists(Path.of(p))) {
        return p;
      }
    }
    throw new IOException(
        "libfuse3 is not installed (Debian: apt-get install fuse3 libfuse3-3; or set"
            + " OSFARM_LIBFUSE to libfuse3.so.3)");
  }

  /** The source of an offline mount: never asked. */
  private record OfflineSource(String name) implements ObjectSource {
    @Override
    public Digest resolve(String refOrId) throws IOException {
      throw new IOException("offline: not resolving '" + refOrId + "'");
    }

    @Override
    public byte[] read(Digest id) throws IOException {
      throw new IOException("offline: object " + id + " is not cached");
    }

    @Override
    public String describe() {
      return name + " (offline)";
    }

    @Override
    public void close() {}
  }
}
