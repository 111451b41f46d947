package org.osfarm.build;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;
import org.osfarm.core.Digest;
import org.osfarm.core.EntrySource;
import org.osfarm.core.ExportFormat;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.PublishResult;
import org.osfarm.core.RefUpdate;
import org.osfarm.core.Repository;
import org.osfarm.core.Snapshot;
import org.osfarm.core.TarSource;

/**
 * Builds images from specs into a repository, reusing every layer already built.
 *
 * <p>Design: a spec becomes a {@link BuildPlan} of layers core → base → image → appliance. Each
 * layer's key is the SHA-256 of its canonical inputs: the parent's key, the normalized layer spec
 * (packages, repositories, files, users, scripts' content; secrets by digest), the mirror's
 * Release-file digest (which pins the package indices and so the resolved versions) and {@link
 * #BUILDER_VERSION}. A layer is cached when the ref {@code cache/layers/<key>} exists; a miss is
 * built on top of its parent's tree by the {@link BuilderBackend}, streamed into {@link
 * Repository#publish} under a staging ref, and named {@code cache/layers/<key>} only after the
 * backend succeeded, so a failed build never leaves a cached layer. Identical concurrent builds
 * serialize on a per-key lock and the second finds the first's result. Outputs are cached per
 * (image key, format) under the cache directory: an identical request is answered from there.
 *
 * <p>Thread-safe: one builder may serve concurrent builds.
 */
public final class ImageBuilder {
  /** Part of every layer key: bump when the way a layer is built changes. */
  public static final String BUILDER_VERSION = "osfarm-build/4";

  /** Where layer snapshots are named. */
  public static final String LAYER_REFS = "cache/layers/";

  private static final AtomicLong SEQ = new AtomicLong();

  private final Repository repo;
  private final ClassRegistry classes;
  private final Path cacheDir;
  private final MirrorState mirrors;
  private final KeyLocks locks;
  private final LayerCheckouts checkouts;
  private final boolean detachSpares;
  private final List<BuilderBackend> backends = List.of(new MmdebstrapBackend());

  /**
   * @param repo where layers and images are published
   * @param classes the known classes
   * @param cacheDir downloaded .debs, mirror states, cached outputs, work directories
   */
  public ImageBuilder(Repository repo, ClassRegistry classes, Path cacheDir) {
    this(repo, classes, cacheDir, false);
  }

  /**
   * @param repo where layers and images are published
   * @param classes the known classes
   * @param cacheDir downloaded .debs, mirror states, cached outputs, work directories
   * @param detachSpares whether a fresh output's spare (the copy the next identical request is
   *     given, see {@link OutputDelivery}) is made by a detached process after the build returns
   *     (the command line: the answer does not wait for a third copy of the image) rather than
   *     during the build (a long-lived process, tests)
   */
  public ImageBuilder(Repository repo, ClassRegistry classes, Path cacheDir, boolean detachSpares) {
    this.detachSpares = detachSpares;
    this.repo = repo;
    this.classes = classes;
    this.cacheDir = cacheDir.toAbsolutePath();
    this.mirrors = new MirrorState(this.cacheDir);
    this.locks = new KeyLocks(this.cacheDir.resolve("locks"));
    this.checkouts = new LayerCheckouts(this.cacheDir, repo, locks);
  }

  /**
   * {@code $OSFARM_CACHE}, else for root {@code /var/cache/osfarm/build} (a build namespace's root
   * is an unprivileged uid that cannot enter /root), else {@code $XDG_CACHE_HOME/osfarm/build},
   * else ~/.cache/osfarm/build.
   */
  public static Path defaultCacheDir(Map<String, String> env) {
    String e = env.get("OSFARM_CACHE");
    if (e != null && !e.isBlank()) {
      return Path.of(e);
    }
    if (Userns.isRoot()) {
      return Path.of("/var/cache/osfarm/build");
    }
    String x = env.get("XDG_CACHE_HOME");
    if (x != null && !x.isBlank()) {
      return Path.of(x, "osfarm", "build");
    }
    return Path.of(System.getProperty("user.home"), ".cache", "osfarm", "build");
  }

  public ClassRegistry classes() {
    return classes;
  }

  // ---------------------------------------------------------------- planning

  /**
   * Plans a spec: its layers, keys and which are cached.
   *
   * @param explain on a miss, say which inputs differ from the nearest cached layer of that kind
   * @param refresh recheck the mirror state even if its TTL has not expired
   * @throws SpecException for an unknown class, architecture or group
   * @throws BuildException if the mirror is unreachable
   */
  public BuildPlan plan(ImageSpec spec, boolean explain, boolean refresh) {
    ImageSpec s = spec.normalized();
    DistroClass c = classes.get(s.className());
    String arch = s.arch() == null ? c.architectures().getFirst() : s.arch();
    if (!c.architectures().contains(arch)) {
      throw new SpecException(
          "class "
              + c.name()
              + " has no architecture '"
              + arch
              + "' (supported: "
              + String.join(", ", c.architectures())
              + ")");
    }
    backend(c);
    List<String> groups = s.groups().isEmpty() ? c.defaultGroups() : s.groups();
    for (String g : groups) {
      c.group(g);
    }
    for (ImageSpec.FileSpec f : s.files()) {
      Objects.requireNonNull(f.path());
    }
    String release = mirrors.release(c.mirror(), c.suite(), c.ttl(), refresh);
    List<String> extraReleases = new ArrayList<>();
    for (ImageSpec.Repo r : s.repositories()) {
      extraReleases.add(mirrors.release(r.uri(), r.suite(), c.ttl(), refresh));
    }
    List<PlannedLayer> layers = new ArrayList<>();

    Map<String, Object> core = new TreeMap<>();
    core.put("kind", "core");
    core.put("class", c.name());
    core.put("family", c.family());
    core.put("suite", c.suite());
    core.put("mirror", c.mirror());
    core.put("components", c.components());
    core.put("variant", c.variant());
    core.put("arch", arch);
    core.put("keyring", keyringDigest(c));
    core.put("packages", ImageSpec.sortedUnique(c.group("core")));
    layers.add(layer(LayerKind.CORE, core, null, release, explain));

    if (groups.contains("base")) {
      Map<String, Object> base = new TreeMap<>();
      base.put("kind", "base");
      base.put("packages", ImageSpec.sortedUnique(c.group("base")));
      layers.add(layer(LayerKind.BASE, base, layers.getLast(), release, explain));
    }

    List<String> pk = new ArrayList<>(s.packages());
    for (String g : groups) {
      if (!g.equals("core") && !g.equals("base")) {
        pk.addAll(c.group(g));
      }
    }
    if (s.kernel()) {
      String k = c.kernels().get(arch);
      if (k == null) {
        throw new SpecException("class " + c.name() + " has no kernel for " + arch);
      }
      pk.add(k);
    }
    if (s.rootPassword() != null || s.rootPasswordHash() != null || !s.users().isEmpty()) {
      pk.add("passwd"); // chpasswd and useradd
    }
    pk = ImageSpec.sortedUnique(pk);
    boolean image =
        !pk.isEmpty()
            || !s.repositories().isEmpty()
            || !s.files().isEmpty()
            || !s.users().isEmpty()
            || !s.scripts().isEmpty()
            || s.hostname() != null
            || s.rootPassword() != null
            || s.rootPasswordHash() != null;
    if (image) {
      Map<String, Object> im = new TreeMap<>();
      im.put("kind", "image");
      im.put("packages", pk);
      List<Object> repos = new ArrayList<>();
      for (int i = 0; i < s.repositories().size(); i++) {
        ImageSpec.Repo r = s.repositories().get(i);
        repos.add(
            Map.of(
                "uri", r.uri(),
                "suite", r.suite(),
                "components", r.components(),
                "key", Objects.requireNonNullElse(Canonical.sha(keyText(r)), ""),
                "release", extraReleases.get(i)));
      }
      im.put("repositories", repos);
      im.put(
          "files",
          s.files().stream()
              .map(f -> List.of(f.path(), f.mode(), Canonical.sha(f.content())))
              .toList());
      im.put("rootPassword", Objects.requireNonNullElse(Canonical.sha(s.rootPassword()), ""));
      if (s.rootPasswordHash() != null) { // only when set: keeps the keys of earlier specs
        im.put("rootPasswordHash", Canonical.sha(s.rootPasswordHash()));
      }
      im.put(
          "users",
          s.users().stream()
              .map(
                  u ->
                      u.passwordHash() == null // keeps the keys of earlier specs
                          ? List.of(
                              u.name(),
                              Objects.requireNonNullElse(Canonical.sha(u.password()), ""),
                              u.sshKeys(),
                              u.sudo())
                          : List.of(
                              u.name(), "", u.sshKeys(), u.sudo(), Canonical.sha(u.passwordHash())))
              .toList());
      im.put("hostname", Objects.requireNonNullElse(s.hostname(), ""));
      im.put(
          "scripts",
          s.scripts().stream().map(x -> List.of(x.name(), Canonical.sha(x.content()))).toList());
      layers.add(layer(LayerKind.IMAGE, im, layers.getLast(), release, explain));
    }
    if (!s.services().isEmpty() || !s.firstBoot().isEmpty()) {
      Map<String, Object> ap = new TreeMap<>();
      ap.put("kind", "appliance");
      ap.put("packages", List.of());
      ap.put("services", s.services());
      ap.put(
          "firstBoot",
          s.firstBoot().stream().map(x -> List.of(x.name(), Canonical.sha(x.content()))).toList());
      layers.add(layer(LayerKind.APPLIANCE, ap, layers.getLast(), release, explain));
    }
    return new BuildPlan(s, c, arch, layers);
  }

  private PlannedLayer layer(
      LayerKind kind,
      Map<String, Object> inputs,
      PlannedLayer parent,
      String release,
      boolean explain) {
    inputs.put("parent", parent == null ? "" : parent.key().hex());
    inputs.put("mirrorRelease", release);
    inputs.put("builder", BUILDER_VERSION);
    Digest key = Canonical.digest(inputs);
    @SuppressWarnings("unchecked")
    List<String> pk = (List<String>) inputs.get("packages");
    Digest cached = repo.refs().get(LAYER_REFS + key.hex()).orElse(null);
    String why =
        !explain ? null : cached == null ? explainMiss(kind, inputs) : resolved(cached, parent);
    return new PlannedLayer(kind, key, inputs, pk, cached, why);
  }

  /**
   * What a cached layer resolved: its package count and the packages (name=version) it added or
   * changed relative to its parent layer, from the snapshot's {@code build.packages}.
   */
  private String resolved(Digest snapshot, PlannedLayer parent) {
    Map<String, String> mine = packageSet(snapshot);
    if (mine == null) {
      return "resolved package set not recorded (built before osfarm-build/3)";
    }
    Map<String, String> below =
        parent == null || parent.cached() == null ? Map.of() : packageSet(parent.cached());
    if (below == null) {
      below = Map.of();
    }
    List<String> added = new ArrayList<>();
    for (Map.Entry<String, String> e : mine.entrySet()) {
      if (!e.getValue().equals(below.get(e.getKey()))) {
        added.add(e.getKey() + "=" + e.getValue());
      }
    }
    List<String> removed = new ArrayList<>();
    for (String n : below.keySet()) {
      if (!mine.containsKey(n)) {
        removed.add("-" + n);
      }
    }
    added.addAll(removed);
    return "resolved "
        + mine.size()
        + " packages"
        + (parent == null ? ": " : "; on its parent: ")
        + (added.isEmpty() ? "no change" : String.join(" ", added));
  }

  /** name → version of a layer snapshot's installed packages, or null if not recorded. */
  private Map<String, String> packageSet(Digest snapshot) {
    String p = repo.readSnapshot(snapshot).metadata().get("build.packages");
    if (p == null) {
      return null;
    }
    Map<String, String> m = new TreeMap<>();
    for (String line : p.split("\n")) {
      String l = line.strip();
      int at = l.indexOf('=');
      if (at < 0) {
        at = l.indexOf(' '); // osfarm-build/2 wrote "name version"
      }
      if (at > 0) {
        m.put(l.substring(0, at), l.substring(at + 1));
      }
    }
    return m;
  }

  /** Which inputs differ between a missing layer and the nearest cached layer of its kind. */
  private String explainMiss(LayerKind kind, Map<String, Object> inputs) {
    String best = null;
    List<String> bestDiff = null;
    for (Map.Entry<String, Digest> e : repo.refs().list().entrySet()) {
      if (!e.getKey().startsWith(LAYER_REFS)) {
        continue;
      }
      Snapshot snap = repo.readSnapshot(e.getValue());
      String json = snap.metadata().get("build.inputs");
      if (json == null) {
        continue;
      }
      Map<String, Object> other = Canonical.parse(json);
      if (!kind.label().equals(other.get("kind"))) {
        continue;
      }
      List<String> diff = new ArrayList<>();
      TreeMap<String, Object> all = new TreeMap<>(inputs);
      other.forEach(all::putIfAbsent);
      for (String k : all.keySet()) {
        Object a = Canonical.parse(Canonical.json(Map.of("v", inputs.getOrDefault(k, ""))));
        Object b = Canonical.parse(Canonical.json(Map.of("v", other.getOrDefault(k, ""))));
        if (!a.equals(b)) {
          diff.add(describe(k, other.get(k), inputs.get(k)));
        }
      }
      if (bestDiff == null || diff.size() < bestDiff.size()) {
        best = e.getKey().substring(LAYER_REFS.length());
        bestDiff = diff;
      }
    }
    if (best == null) {
      return "no cached " + kind.label() + " layer to compare with";
    }
    return "nearest cached "
        + kind.label()
        + " layer "
        + best.substring(0, 12)
        + " differs in: "
        + String.join("; ", bestDiff);
  }

  private static String describe(String k, Object was, Object now) {
    if (was instanceof List<?> a && now instanceof List<?> b) {
      List<String> plus = new ArrayList<>();
      List<String> minus = new ArrayList<>();
      for (Object x : b) {
        if (!a.contains(x)) {
          plus.add("+" + x);
        }
      }
      for (Object x : a) {
        if (!b.contains(x)) {
          minus.add("-" + x);
        }
      }
      plus.addAll(minus);
      return k + " " + String.join(" ", plus);
    }
    String w = String.valueOf(was);
    String n = String.valueOf(now);
    if (k.equals("parent") || k.equals("mirrorRelease")) {
      w = w.length() > 12 ? w.substring(0, 12) : w;
      n = n.length() > 12 ? n.substring(0, 12) : n;
    }
    return k + " " + w + " -> " + n;
  }

  private BuilderBackend backend(DistroClass c) {
    for (BuilderBackend b : backends) {
      if (b.supports(c)) {
        return b;
      }
    }
    throw new SpecException(
        "no builder backend for family '" + c.family() + "' of class " + c.name());
  }

  private String keyringDigest(DistroClass c) {
    try {
      return Digest.of(Files.readAllBytes(keyring(c))).hex();
    } catch (IOException e) {
      throw new BuildException(
          "cannot read keyring of class " + c.name() + ": " + e.getMessage(), e);
    }
  }

  private Path keyring(DistroClass c) throws IOException {
    String k = c.keyring();
    if (k == null) {
      throw new BuildException("class " + c.name() + " names no keyring");
    }
    if (!k.startsWith("resource:")) {
      Path p = Path.of(k);
      if (!Files.isReadable(p)) {
        throw new BuildException(
            "keyring "
                + k
                + " of class "
                + c.name()
                + " is missing (apt-get install debian-archive-keyring)");
      }
      return p;
    }
    String name = k.substring("resource:".length());
    Path dir = cacheDir.resolve("keyrings");
    Files.createDirectories(dir);
    Path out = dir.resolve(name);
    if (!Files.exists(out)) {
      try (InputStream in = ClassRegistry.resource("keyrings/" + name)) {
        Path tmp = Files.createTempFile(dir, ".kr", ".tmp");
        Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-r--r--"));
        Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      }
    }
    return out;
  }

  private static String keyText(ImageSpec.Repo r) {
    if (r.key() == null) {
      return null;
    }
    if (r.key().contains("-----BEGIN")) {
      return r.key();
    }
    try {
      return Base64.getEncoder().encodeToString(Files.readAllBytes(Path.of(r.key())));
    } catch (IOException e) {
      throw new SpecException("cannot read repository key " + r.key() + ": " + e.getMessage());
    }
  }

  // ---------------------------------------------------------------- building

  /**
   * Builds (or finds) the image for {@code spec}, points {@code ref} at it (if not null) and writes
   * the outputs.
   *
   * @throws SpecException for a bad spec (nothing is built or published)
   * @throws BuildException when a backend or output tool fails (nothing half-built is published)
   */
  public BuildResult build(ImageSpec spec, String ref, List<OutputRequest> outputs, BuildListener l)
      throws IOException {
    List<Process> before = CLEANUPS.get();
    CLEANUPS.set(new ArrayList<>());
    try {
      return buildAndWriteOutputs(spec, ref, outputs, l);
    } finally {
      // The work trees of this build are deleted in the background (mmdebstrap deletes its own
      // after the tarball was read), overlapping the publish and the outputs; the build ends when
      // they are gone, so that no process of this build still writes in the cache or work
      // directory when it returns.
      awaitQuietly(CLEANUPS.get());
      CLEANUPS.set(before);
    }
  }

  /** Background deletions of work trees started by the build running on this thread. */
  private static final ThreadLocal<List<Process>> CLEANUPS = new ThreadLocal<>();

  private static final java.util.logging.Logger LOG =
      java.util.logging.Logger.getLogger(ImageBuilder.class.getName());

  private static void awaitQuietly(List<Process> ps) {
    if (ps == null) {
      return;
    }
    for (Process p : ps) {
      try {
        if (!p.waitFor(10, java.util.concurrent.TimeUnit.MINUTES)) {
          LOG.warning("the deletion of a work tree is still running after 10 minutes");
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  private BuildResult buildAndWriteOutputs(
      ImageSpec spec, String ref, List<OutputRequest> outputs, BuildListener l) throws IOException {
    long t0 = System.nanoTime();
    BuildPlan plan = plan(spec, false, false);
    int built = 0;
    int reused = 0;
    Digest parent = null;
    List<PlannedLayer> all = plan.layers();
    for (int i = 0; i < all.size(); i++) {
      PlannedLayer layer = all.get(i);
      Digest have = layer.cached();
      List<PlannedLayer> rest = all.subList(i, all.size());
      if (have == null
          && rest.size() > 1
          && rest.stream().allMatch(x -> x.cached() == null)
          && !Boolean.getBoolean("osfarm.build.layerByLayer")) {
        Digest top = buildChain(plan, rest, parent, l);
        if (top != null) {
          built += rest.size();
          parent = top;
          break;
        }
      }
      if (have == null) {
        have = buildLayer(plan, layer, parent, l);
        if (have == null) {
          reused++; // someone else built it while we waited for the lock
          have = repo.refs().get(layer.ref()).orElseThrow();
        } else {
          built++;
        }
      } else {
        reused++;
        l.step("layer " + layer.kind().label() + " " + layer.key().shortHex(12) + ": cached");
      }
      parent = have;
    }
    if (ref != null) {
      RefUpdate u = repo.tag(ref, parent.hex());
      l.step("ref " + ref + ": " + u.name().toLowerCase(java.util.Locale.ROOT));
    }
    int fromCache = 0;
    for (OutputRequest o : outputs) {
      if (writeOutput(plan, parent, o, l)) {
        fromCache++;
      }
    }
    return new BuildResult(
        parent,
        plan,
        built,
        reused,
        fromCache,
        (System.nanoTime() - t0) / 1e9,
        List.copyOf(outputs));
  }

  /** Builds one layer; returns its snapshot, or null if it appeared in the cache meanwhile. */
  private Digest buildLayer(BuildPlan plan, PlannedLayer layer, Digest parent, BuildListener l)
      throws IOException {
    try (KeyLocks.Held h = locks.lock("layer-" + layer.key().hex())) {
      if (repo.refs().get(layer.ref()).isPresent()) {
        return null;
      }
      l.step("layer " + layer.kind().label() + " " + layer.key().shortHex(12) + ": building");
      int at = plan.layers().indexOf(layer);
      if (parent != null && at > 0 && overlayEnabled()) {
        return buildOnCheckout(plan, layer, plan.layers().get(at - 1), parent, l);
      }
      DistroClass c = plan.distro();
      Path workRoot = cacheDir.resolve("work");
      Files.createDirectories(workRoot);
      checkReachable(workRoot);
      Path work = Files.createTempDirectory(workRoot, layer.key().shortHex(12) + "-");
      Path debs = cacheDir.resolve("debs").resolve(c.name() + "-" + plan.arch());
      boolean ok = false;
      BuilderBackend.Running run = null;
      try {
        Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x"));
        Userns.own(work);
        spreadInodes(work);
        if (!Files.isDirectory(debs)) {
          Files.createDirectories(debs);
          Userns.own(debs);
        }
        Path parentTar = null;
        if (parent != null) {
          parentTar = work.resolve("parent.tar");
          repo.export(parent, List.of(), ExportFormat.TAR, parentTar, ProgressListener.NONE);
          Files.setPosixFilePermissions(parentTar, PosixFilePermissions.fromString("rw-r--r--"));
        }
        List<ImageSpec.Repo> repos =
            layer.kind() == LayerKind.IMAGE ? plan.spec().repositories() : List.of();
        for (int i = 0; i < repos.size(); i++) {
          String kt = repos.get(i).key();
          if (kt != null) {
            Path kf = work.resolve("repo-" + i + ".key");
            if (kt.contains("-----BEGIN")) {
              Files.writeString(kf, kt);
            } else {
              Files.copy(Path.of(kt), kf);
            }
            Files.setPosixFilePermissions(kf, PosixFilePermissions.fromString("rw-r--r--"));
          }
        }
        String script = LayerScripts.script(plan, layer.kind());
        BuilderBackend.Job job =
            new BuilderBackend.Job(
                c,
                plan.arch(),
                layer.kind(),
                parentTar,
                layer.packages(),
                repos,
                script,
                work,
                debs,
                keyring(c));
        run = backend(c).start(job, l);
        Map<String, String> meta = new TreeMap<>();
        meta.put("build.builder", BUILDER_VERSION);
        meta.put("build.layer.kind", layer.kind().label());
        meta.put("build.layer.key", layer.key().hex());
        meta.put("build.inputs", Canonical.json(layer.inputs()));
        meta.put("build.mirror.release", String.valueOf(layer.inputs().get("mirrorRelease")));
        meta.put("build.class", c.name());
        meta.put("build.arch", plan.arch());
        if (parent != null) {
          meta.put("build.layer.parent", parent.hex());
        }
        if (layer == plan.top()) {
          meta.put("spec", Canonical.json(redacted(plan.spec())));
        }
        String staging =
            "cache/staging/"
                + layer.key().hex()
                + "-"
                + ProcessHandle.current().pid()
                + "-"
                + SEQ.incrementAndGet();
        Path pkgFile = work.resolve("packages.txt");
        PublishResult pr;
        // The packages file is complete before mmdebstrap writes the tar; publish copies the
        // metadata map after reading the source to its end, so filling it at EOF records them.
        InputStream tar =
            new FilterInputStream(run.tar()) {
              boolean done;

              private void eof() throws IOException {
                if (!done && Files.exists(pkgFile)) {
                  done = true;
                  meta.put("build.packages", Files.readString(pkgFile));
                }
              }

              @Override
              public int read() throws IOException {
                int b = super.read();
                if (b < 0) {
                  eof();
                }
                return b;
              }

              @Override
              public int read(byte[] b, int off, int len) throws IOException {
                int n = super.read(b, off, len);
                if (n < 0) {
                  eof();
                }
                return n;
              }
            };
        try (TarSource src = new TarSource(tar)) {
          pr =
              repo.publish(
                  src,
                  staging,
                  "osfarm build: " + layer.kind().label() + " layer",
                  meta,
                  ProgressListener.NONE);
        } catch (IOException | RuntimeException e) {
          run.abort();
          try {
            run.finish(); // prefer the backend's own error (e.g. an unknown package)
          } catch (BuildException be) {
            deleteQuietly(staging);
            throw be;
          }
          deleteQuietly(staging);
          throw new BuildException(
              "publishing the " + layer.kind().label() + " layer failed: " + e.getMessage(), e);
        }
        try {
          run.finish();
        } catch (BuildException e) {
          deleteQuietly(staging);
          throw e;
        }
        RefUpdate u =
            repo.refs()
                .compareAndSet(layer.ref(), null, pr.snapshot(), "build " + layer.kind().label());
        deleteQuietly(staging);
        l.step(
            String.format(
                "layer %s %s: built, %,d entries, %,.1f MB, %,.1f MB new (%s)",
                layer.kind().label(),
                layer.key().shortHex(12),
                pr.entries(),
                pr.logicalBytes() / 1e6,
                pr.newBytes() / 1e6,
                u.name().toLowerCase(java.util.Locale.ROOT)));
        ok = true;
        return repo.refs().get(layer.ref()).orElse(pr.snapshot());
      } finally {
        deleteTree(work, !ok, run == null ? null : run.process());
      }
    }
  }

  /**
   * Whether layers on a cached parent are built in an overlayfs over the parent's checkout (the
   * default) rather than on the parent's tree unpacked from a tar ({@code
   * -Dosfarm.build.overlay=false}, for kernels without unprivileged overlayfs, before 5.11).
   */
  static boolean overlayEnabled() {
    return !"false".equals(System.getProperty("osfarm.build.overlay"));
  }

  /**
   * Builds one layer copy-on-write on a cached parent: the parent is checked out once (persistent,
   * shared, see {@link LayerCheckouts}), the backend installs in an overlayfs over it, and the
   * layer's snapshot is the parent's tree edited by the overlay's upper directory ({@link
   * UpperMerge}): only what the layer changed is read, hashed and stored.
   */
  private Digest buildOnCheckout(
      BuildPlan plan, PlannedLayer layer, PlannedLayer parentLayer, Digest parent, BuildListener l)
      throws IOException {
    DistroClass c = plan.distro();
    Path lower = checkouts.checkout(parentLayer.key(), parent, l);
    Path work = workDir(layer);
    Path debs = debsDir(plan);
    String staging = stagingRef(layer) + "-upper";
    boolean ok = false;
    try {
      List<ImageSpec.Repo> repos =
          layer.kind() == LayerKind.IMAGE ? plan.spec().repositories() : List.of();
      writeKeys(repos, work);
      BuilderBackend.Job job =
          new BuilderBackend.Job(
              c,
              plan.arch(),
              layer.kind(),
              null,
              layer.packages(),
              repos,
              LayerScripts.script(plan, layer.kind()),
              work,
              debs,
              keyring(c),
              List.of(),
              lower);
      BuilderBackend.Running run = backend(c).start(job, l);
      List<String> packages = run.finish();
      long t0 = System.nanoTime();
      // the upper directory as the namespace sees it (owners mapped back), with whiteouts
      List<String> cmd =
          Userns.run(
              List.of(
                  "tar",
                  "-C",
                  job.upper().toString(),
                  "--numeric-owner",
                  "--xattrs",
                  "--xattrs-include=*",
                  "--format=pax",
                  "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
                  "-cf",
                  "-",
                  "."));
      Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
      p.getOutputStream().close();
      PublishResult up;
      try (TarSource src = new TarSource(p.getInputStream())) {
        up = repo.publish(src, staging, "osfarm build: upper", Map.of(), ProgressListener.NONE);
      }
      try {
        if (p.waitFor() != 0) {
          throw new BuildException(
              "reading the overlay's changes failed (tar exit " + p.exitValue() + ")");
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new BuildException("interrupted", e);
      }
      Map<String, String> meta = meta(plan, layer, parent);
      meta.put("build.packages", String.join("\n", packages) + (packages.isEmpty() ? "" : "\n"));
      meta.put("build.layer.method", "overlay");
      Snapshot ps = repo.readSnapshot(parent);
      for (String k : List.of("source", "tar.prefix", "tar.root")) {
        if (ps.metadata().containsKey(k)) {
          meta.put(k, ps.metadata().get(k));
        }
      }
      Digest id;
      int changed;
      try (Repository.Lease lease = repo.holdSharedLock();
          org.osfarm.core.store.ObjectStore.Inserter ins = repo.store().newInserter()) {
        UpperMerge m = new UpperMerge(repo, ins);
        org.osfarm.core.Entry root =
            m.merge(parent, ps.root(), repo.readSnapshot(up.snapshot()).root());
        changed = m.changed;
        id = m.snapshot(root, meta, "osfarm build: " + layer.kind().label() + " layer");
        ins.flush();
        RefUpdate u =
            repo.refs().compareAndSet(layer.ref(), null, id, "build " + layer.kind().label());
        l.step(
            String.format(
                "layer %s %s: built on a checkout of %s, %,d changed entries, %,.1f MB new,"
                    + " merged in %.1f s (%s)",
                layer.kind().label(),
                layer.key().shortHex(12),
                parentLayer.key().shortHex(12),
                changed,
                up.newBytes() / 1e6,
                (System.nanoTime() - t0) / 1e9,
                u.name().toLowerCase(java.util.Locale.ROOT)));
      }
      ok = true;
      return repo.refs().get(layer.ref()).orElse(id);
    } finally {
      deleteQuietly(staging);
      deleteTree(work, !ok);
    }
  }

  /**
   * Builds several missing layers, each on the one before, in one backend run: the tree stays where
   * it is between layers (no tar round trip, no second start-up or index download) and each
   * finished layer is published from a checkout of the tree while the next one installs. Returns
   * the top layer's snapshot, or null if one of the layers appeared meanwhile (build them one by
   * one then).
   */
  private Digest buildChain(
      BuildPlan plan, List<PlannedLayer> chain, Digest parent, BuildListener l) throws IOException {
    List<KeyLocks.Held> held = new ArrayList<>();
    try {
      for (PlannedLayer layer : chain) {
        held.add(locks.lock("layer-" + layer.key().hex()));
        if (repo.refs().get(layer.ref()).isPresent()) {
          return null;
        }
      }
      PlannedLayer first = chain.getFirst();
      for (PlannedLayer layer : chain) {
        l.step("layer " + layer.kind().label() + " " + layer.key().shortHex(12) + ": building");
      }
      DistroClass c = plan.distro();
      Path work = workDir(first);
      Path debs = debsDir(plan);
      java.util.concurrent.ExecutorService pool =
          java.util.concurrent.Executors.newThreadPerTaskExecutor(Thread.ofPlatform().factory());
      List<java.util.concurrent.Future<PublishResult>> done = new ArrayList<>();
      List<String> staging = new ArrayList<>();
      BuilderBackend.Running run = null;
      BuilderBackend.Job job = null;
      boolean ok = false;
      try {
        Path parentTar = parentTar(parent, work);
        List<ImageSpec.Repo> repos = List.of();
        List<BuilderBackend.Stage> then = new ArrayList<>();
        for (PlannedLayer layer : chain) {
          List<ImageSpec.Repo> r =
              layer.kind() == LayerKind.IMAGE ? plan.spec().repositories() : List.of();
          writeKeys(r, work);
          if (layer == first) {
            repos = r;
          } else {
            then.add(
                new BuilderBackend.Stage(
                    layer.kind(), layer.packages(), r, LayerScripts.script(plan, layer.kind())));
          }
        }
        job =
            new BuilderBackend.Job(
                c,
                plan.arch(),
                first.kind(),
                parentTar,
                first.packages(),
                repos,
                LayerScripts.script(plan, first.kind()),
                work,
                debs,
                keyring(c),
                then);
        for (int k = 0; k < chain.size(); k++) {
          staging.add(stagingRef(chain.get(k)));
        }
        run = backend(c).start(job, l);
        BuilderBackend.Running r = run;
        for (int k = 0; k < chain.size() - 1; k++) {
          int kk = k;
          BuilderBackend.Job j = job;
          done.add(
              pool.submit(
                  () -> {
                    try (EntrySource src =
                        new WithDevices(new TarSource(Files.newInputStream(j.snapshotPipe(kk))))) {
                      return publishLayer(
                          plan, chain.get(kk), src, staging.get(kk), kk, j, parent, done, l);
                    } catch (IOException | RuntimeException e) {
                      // the run cannot succeed: end it now rather than at the end (its snapshot
                      // writer could wait for a reader that is gone)
                      r.abort();
                      throw e;
                    }
                  }));
        }
        PublishResult top;
        try (EntrySource src = new TarSource(run.tar())) {
          top =
              publishLayer(
                  plan,
                  chain.getLast(),
                  src,
                  staging.getLast(),
                  chain.size() - 1,
                  job,
                  parent,
                  done,
                  l);
        }
        run.finish();
        List<PublishResult> results = new ArrayList<>();
        for (java.util.concurrent.Future<PublishResult> f : done) {
          results.add(join(f));
        }
        results.add(top);
        Digest last = null;
        for (int k = 0; k < chain.size(); k++) {
          PlannedLayer layer = chain.get(k);
          PublishResult pr = results.get(k);
          RefUpdate u =
              repo.refs()
                  .compareAndSet(layer.ref(), null, pr.snapshot(), "build " + layer.kind().label());
          l.step(
              String.format(
                  "layer %s %s: built, %,d entries, %,.1f MB, %,.1f MB new (%s)",
                  layer.kind().label(),
                  layer.key().shortHex(12),
                  pr.entries(),
                  pr.logicalBytes() / 1e6,
                  pr.newBytes() / 1e6,
                  u.name().toLowerCase(java.util.Locale.ROOT)));
          last = repo.refs().get(layer.ref()).orElse(pr.snapshot());
        }
        ok = true;
        return last;
      } catch (IOException | RuntimeException e) {
        if (run != null) {
          run.abort();
          unblock(job, chain.size() - 1);
          for (java.util.concurrent.Future<PublishResult> f : done) {
            f.cancel(true);
          }
          try {
            run.finish(); // prefer the backend's own error (e.g. an unknown package)
          } catch (BuildException be) {
            throw be;
          }
        }
        if (e instanceof BuildException be) {
          throw be;
        }
        throw new BuildException("building layers failed: " + e.getMessage(), e);
      } finally {
        pool.shutdownNow();
        for (String st : staging) {
          deleteQuietly(st);
        }
        deleteTree(work, !ok, run == null ? null : run.process());
      }
    } finally {
      for (int i = held.size() - 1; i >= 0; i--) {
        held.get(i).close();
      }
    }
  }

  private static PublishResult join(java.util.concurrent.Future<PublishResult> f)
      throws IOException {
    try {
      return f.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BuildException("interrupted", e);
    } catch (java.util.concurrent.ExecutionException e) {
      throw rethrow(e);
    }
  }

  /** The cause of a failed publish, as thrown by the publish itself. */
  private static IOException rethrow(java.util.concurrent.ExecutionException e) throws IOException {
    if (e.getCause() instanceof IOException io) {
      throw io;
    }
    if (e.getCause() instanceof RuntimeException re) {
      throw re;
    }
    throw new BuildException(String.valueOf(e.getCause()), e.getCause());
  }

  /**
   * The publish of layer {@code k - 1}, awaited at the end of layer {@code k}'s stream. By then
   * every snapshot writer has ended (the run's wait hook precedes its tarball; a failed run writes
   * none), so a reader still blocked opening its FIFO never gets a writer: it is released (EOF),
   * and the run's own error is reported.
   */
  private static PublishResult awaitLower(
      java.util.concurrent.Future<PublishResult> f, BuilderBackend.Job job, int k)
      throws IOException {
    while (true) {
      try {
        return join(f, 200);
      } catch (java.util.concurrent.TimeoutException e) {
        unblock(job, k);
      }
    }
  }

  private static PublishResult join(java.util.concurrent.Future<PublishResult> f, long millis)
      throws IOException, java.util.concurrent.TimeoutException {
    try {
      return f.get(millis, java.util.concurrent.TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BuildException("interrupted", e);
    } catch (java.util.concurrent.ExecutionException e) {
      throw rethrow(e);
    }
  }

  /** Ends readers still waiting on snapshot FIFOs (opening one read-write never blocks). */
  private static void unblock(BuilderBackend.Job job, int n) {
    for (int k = 0; k < n; k++) {
      try (java.io.RandomAccessFile f =
          new java.io.RandomAccessFile(job.snapshotPipe(k).toFile(), "rw")) {
        // opening as a writer releases a reader blocked in open; closing gives it EOF
      } catch (IOException e) {
        // gone already
      }
    }
  }

  /** Publishes the {@code k}th layer of a run; its parent is the run's parent or layer k-1. */
  private PublishResult publishLayer(
      BuildPlan plan,
      PlannedLayer layer,
      EntrySource src,
      String staging,
      int k,
      BuilderBackend.Job job,
      Digest parent,
      List<java.util.concurrent.Future<PublishResult>> done,
      BuildListener l)
      throws IOException {
    Map<String, String> meta = meta(plan, layer, parent);
    Path pkgFile = job.packagesFile(k);
    // publish copies the metadata after reading the source to its end: fill in what is known then
    EntrySource s =
        new ForwardingSource(src) {
          boolean filled;

          @Override
          public org.osfarm.core.tar.TarHeader next() throws IOException {
            org.osfarm.core.tar.TarHeader h = super.next();
            if (h == null && !filled) {
              filled = true;
              l.log("osfarm: " + layer.kind().label() + " layer: end of its tar stream");
              if (Files.exists(pkgFile)) {
                meta.put("build.packages", Files.readString(pkgFile));
              }
              if (k > 0) {
                meta.put(
                    "build.layer.parent", awaitLower(done.get(k - 1), job, k).snapshot().hex());
              }
            }
            return h;
          }
        };
    PublishResult pr =
        repo.publish(
            s,
            staging,
            "osfarm build: " + layer.kind().label() + " layer",
            meta,
            ProgressListener.NONE);
    l.log(
        String.format("osfarm: %s layer: published in %.1f s", layer.kind().label(), pr.seconds()));
    return pr;
  }

  private Map<String, String> meta(BuildPlan plan, PlannedLayer layer, Digest parent) {
    Map<String, String> meta = new java.util.concurrent.ConcurrentSkipListMap<>();
    meta.put("build.builder", BUILDER_VERSION);
    meta.put("build.layer.kind", layer.kind().label());
    meta.put("build.layer.key", layer.key().hex());
    meta.put("build.inputs", Canonical.json(layer.inputs()));
    meta.put("build.mirror.release", String.valueOf(layer.inputs().get("mirrorRelease")));
    meta.put("build.class", plan.distro().name());
    meta.put("build.arch", plan.arch());
    if (parent != null) {
      meta.put("build.layer.parent", parent.hex());
    }
    if (layer == plan.top()) {
      meta.put("spec", Canonical.json(redacted(plan.spec())));
    }
    return meta;
  }

  private static String stagingRef(PlannedLayer layer) {
    return "cache/staging/"
        + layer.key().hex()
        + "-"
        + ProcessHandle.current().pid()
        + "-"
        + SEQ.incrementAndGet();
  }

  private Path workDir(PlannedLayer layer) throws IOException {
    Path workRoot = cacheDir.resolve("work");
    Files.createDirectories(workRoot);
    checkReachable(workRoot);
    Path work = Files.createTempDirectory(workRoot, layer.key().shortHex(12) + "-");
    Files.setPosixFilePermissions(work, PosixFilePermissions.fromString("rwxr-xr-x"));
    Userns.own(work);
    spreadInodes(work);
    return work;
  }

  /**
   * Gives a build's work directory ext4's top-directory flag ({@code chattr +T}), so that the
   * directories made in it (mmdebstrap's tree, the layers' checkouts and snapshots) are placed as
   * top-level directories: each in a block group of its own with free inodes, not in the crowded
   * group of the cache directory.
   *
   * <p>Why: ext4 without a journal skips, when it allocates an inode, every free inode of the group
   * deleted in the last 30 seconds, with one inode-table lookup each ({@code recently_deleted}).
   * dpkg creates tens of thousands of files; in the cache's group, next to the trees and snapshots
   * other builds (and this one) just deleted, each creation scanned thousands of such inodes. A
   * cold build spent 4.3 s of dpkg's and 3.4 s of tar's CPU time there ({@code perf}); with the
   * flag, 0.9 s and 0.4 s (docs/benchmarks.md). Other file systems do not know the flag, and an
   * ext4 with a journal does not skip: then it is only a placement hint, and a failure is ignored.
   * {@code -Dosfarm.build.topdir=false} leaves the flag off (for comparisons).
   */
  static void spreadInodes(Path dir) {
    if (!Boolean.parseBoolean(System.getProperty("osfarm.build.topdir", "true"))) {
      return;
    }
    try {
      Process p =
          new ProcessBuilder("chattr", "+T", dir.toString())
              .redirectErrorStream(true)
              .redirectOutput(ProcessBuilder.Redirect.DISCARD)
              .start();
      p.waitFor();
    } catch (IOException e) {
      // no chattr: the flag is only a placement hint
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private Path debsDir(BuildPlan plan) throws IOException {
    Path debs = cacheDir.resolve("debs").resolve(plan.distro().name() + "-" + plan.arch());
    if (!Files.isDirectory(debs)) {
      Files.createDirectories(debs);
      Userns.own(debs);
    }
    return debs;
  }

  private Path parentTar(Digest parent, Path work) throws IOException {
    if (parent == null) {
      return null;
    }
    Path parentTar = work.resolve("parent.tar");
    repo.export(parent, List.of(), ExportFormat.TAR, parentTar, ProgressListener.NONE);
    Files.setPosixFilePermissions(parentTar, PosixFilePermissions.fromString("rw-r--r--"));
    return parentTar;
  }

  private static void writeKeys(List<ImageSpec.Repo> repos, Path work) throws IOException {
    for (int i = 0; i < repos.size(); i++) {
      String kt = repos.get(i).key();
      if (kt != null) {
        Path kf = work.resolve("repo-" + i + ".key");
        if (kt.contains("-----BEGIN")) {
          Files.writeString(kf, kt);
        } else {
          Files.copy(Path.of(kt), kf);
        }
        Files.setPosixFilePermissions(kf, PosixFilePermissions.fromString("rw-r--r--"));
      }
    }
  }

  /** An entry source passing everything through; override to watch. */
  private static class ForwardingSource implements EntrySource {
    private final EntrySource in;

    ForwardingSource(EntrySource in) {
      this.in = in;
    }

    @Override
    public org.osfarm.core.tar.TarHeader next() throws IOException {
      return in.next();
    }

    @Override
    public InputStream content() throws IOException {
      return in.content();
    }

    @Override
    public long position() {
      return in.position();
    }

    @Override
    public String kind() {
      return in.kind();
    }

    @Override
    public void close() throws IOException {
      in.close();
    }
  }

  /**
   * A layer checkout's tar, which leaves /dev out (its nodes are bind mounts during the build),
   * followed by the device entries mmdebstrap writes in unshare mode.
   */
  static final class WithDevices extends ForwardingSource {
    private static final Object[][] DEV = {
      {"./dev/", '5', 0755, "", 0, 0},
      {"./dev/console", '3', 0666, "", 5, 1},
      {"./dev/fd", '2', 0777, "/proc/self/fd", 0, 0},
      {"./dev/full", '3', 0666, "", 1, 7},
      {"./dev/null", '3', 0666, "", 1, 3},
      {"./dev/ptmx", '3', 0666, "", 5, 2},
      {"./dev/pts/", '5', 0755, "", 0, 0},
      {"./dev/random", '3', 0666, "", 1, 8},
      {"./dev/shm/", '5', 0755, "", 0, 0},
      {"./dev/stderr", '2', 0777, "/proc/self/fd/2", 0, 0},
      {"./dev/stdin", '2', 0777, "/proc/self/fd/0", 0, 0},
      {"./dev/stdout", '2', 0777, "/proc/self/fd/1", 0, 0},
      {"./dev/tty", '3', 0666, "", 5, 0},
      {"./dev/urandom", '3', 0666, "", 1, 9},
      {"./dev/zero", '3', 0666, "", 1, 5},
    };
    private int dev = -1;
    private final long now = System.currentTimeMillis() / 1000;

    WithDevices(EntrySource in) {
      super(in);
    }

    @Override
    public org.osfarm.core.tar.TarHeader next() throws IOException {
      if (dev < 0) {
        org.osfarm.core.tar.TarHeader h = super.next();
        if (h != null) {
          String n = new String(h.name(), StandardCharsets.UTF_8);
          if (n.equals("./proc/") || n.equals("./sys/")) {
            // mounted during the checkout: tar recorded the mounted file system's owner and mode;
            // mmdebstrap's own tarball has root's empty 0755 directories
            return new org.osfarm.core.tar.TarHeader(
                h.name(),
                h.typeflag(),
                0755,
                0,
                0,
                h.uname(),
                h.gname(),
                h.mtimeSeconds(),
                h.mtimeNanos(),
                h.size(),
                h.linkName(),
                h.devMajor(),
                h.devMinor(),
                List.of(),
                h.extras());
          }
          return h;
        }
        dev = 0;
      }
      if (dev >= DEV.length) {
        return null;
      }
      Object[] d = DEV[dev++];
      byte[] none = new byte[0];
      return new org.osfarm.core.tar.TarHeader(
          ((String) d[0]).getBytes(StandardCharsets.UTF_8),
          (byte) (char) d[1],
          (int) d[2],
          0,
          0,
          none,
          none,
          now,
          0,
          0,
          ((String) d[3]).getBytes(StandardCharsets.UTF_8),
          (int) d[4],
          (int) d[5],
          List.of(),
          List.of());
    }

    @Override
    public InputStream content() throws IOException {
      return dev < 0 ? super.content() : InputStream.nullInputStream();
    }
  }

  /** The namespace's root must reach the cache; as root, a cache under /root is unreachable. */
  static void checkReachable(Path dir) {
    if (Userns.nsRoot() == null) {
      return;
    }
    for (Path p = dir; p != null; p = p.getParent()) {
      try {
        if (!Files.getPosixFilePermissions(p)
                .contains(java.nio.file.attribute.PosixFilePermission.OTHERS_EXECUTE)
            && ((Integer) Files.getAttribute(p, "unix:uid")) != Userns.nsRoot()[0]) {
          throw new BuildException(
              "the build cache "
                  + dir
                  + " is not reachable from the build's user namespace ("
                  + p
                  + " is not searchable by others): use --cache-dir or $OSFARM_CACHE elsewhere,"
                  + " e.g. /var/cache/osfarm/build");
        }
      } catch (IOException e) {
        throw new BuildException("cannot inspect " + p + ": " + e.getMessage(), e);
      }
    }
  }

  private static ImageSpec redacted(ImageSpec s) {
    List<ImageSpec.User> users =
        s.users().stream()
            .map(
                u ->
                    new ImageSpec.User(
                        u.name(),
                        Canonical.sha(u.password()),
                        u.passwordHash(),
                        u.sshKeys(),
                        u.sudo()))
            .toList();
    return new ImageSpec(
        s.name(),
        s.className(),
        s.arch(),
        s.groups(),
        s.packages(),
        s.repositories(),
        Canonical.sha(s.rootPassword()),
        users,
        s.hostname(),
        s.files(),
        s.scripts(),
        s.kernel(),
        s.services(),
        s.firstBoot(),
        s.rootPasswordHash()); // a crypt hash, as in the image's /etc/shadow
  }

  private void deleteQuietly(String ref) {
    try {
      repo.deleteRef(ref);
    } catch (RuntimeException e) {
      // the staging ref may not exist (the publish failed before naming it)
    }
  }

  /** Deletes a work tree; files a namespace created under subordinate ids are removed in one. */
  static void deleteTree(Path dir) {
    deleteTree(dir, true);
  }

  /**
   * Deletes a work tree, waiting for the end or not: after a successful build nothing needs it and
   * deleting a few hundred MB of small files can take seconds on a busy disk.
   */
  static void deleteTree(Path dir, boolean await) {
    deleteTree(dir, await, null);
  }

  /**
   * Deletes a work tree as above; when {@code after} is a process still running (mmdebstrap
   * deleting its own tree in it after the tarball was read), the deletion starts when it ended, in
   * a process of its own, so that the two do not delete the same files at once.
   */
  static void deleteTree(Path dir, boolean await, ProcessHandle after) {
    if (!Files.exists(dir)) {
      return;
    }
    try {
      List<String> rm =
          Userns.nsRoot() != null
              ? List.of("rm", "-rf", dir.toString())
              : Userns.run(List.of("rm", "-rf", dir.toString()));
      if (!await && after != null && after.isAlive()) {
        List<String> w =
            new ArrayList<>(
                List.of(
                    "sh",
                    "-c",
                    "while kill -0 \"$0\" 2>/dev/null;" + " do sleep 0.2; done; exec \"$@\"",
                    String.valueOf(after.pid())));
        w.addAll(rm);
        rm = w;
      }
      ProcessBuilder pb = new ProcessBuilder(rm);
      pb.redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD);
      Process p = pb.start();
      if (await) {
        p.waitFor();
      } else if (CLEANUPS.get() != null) {
        CLEANUPS.get().add(p);
      }
    } catch (IOException e) {
      // best effort: a leftover work directory is only disk space
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  // ---------------------------------------------------------------- outputs

  /** Where the output cache keeps an image's output in format {@code f}. */
  static Path cachedOutput(Path cacheDir, String imageKey, OutputFormat f) {
    return cacheDir.resolve("outputs").resolve(imageKey).resolve("image." + f.label());
  }

  /** Writes one output of an image; returns true if it came from the output cache. */
  boolean writeOutput(BuildPlan plan, Digest image, OutputRequest o, BuildListener l)
      throws IOException {
    Path target = o.path().toAbsolutePath();
    if (target.getParent() != null) {
      Files.createDirectories(target.getParent());
    }
    if (o.format() == OutputFormat.DIR) {
      l.step("output " + target + ": exporting dir");
      repo.export(image, List.of(), ExportFormat.DIR, target, ProgressListener.NONE);
      return false;
    }
    String key = plan.top().key().hex();
    Path cached = cachedOutput(cacheDir, key, o.format());
    boolean hit = Files.exists(cached);
    boolean delivered = false;
    if (!hit) {
      try (KeyLocks.Held h = locks.lock("output-" + key + "-" + o.format().label())) {
        hit = Files.exists(cached);
        if (!hit) {
          Files.createDirectories(cached.getParent());
          l.step("output " + o.format().label() + ": writing");
          if (OutputDelivery.teeable(o.format())) {
            // one export for the cache entry, its spare and the delivery (no copies after it)
            OutputDelivery.writeFresh(repo, image, o.format(), cached, target, detachSpares);
            delivered = true;
          } else {
            ImageWriters.write(repo, plan, image, o.format(), cached, cacheDir.resolve("work"), l);
          }
        }
      }
    }
    if (!delivered) {
      OutputDelivery.deliver(cached, target, o.format(), false);
    }
    l.step("output " + target + (hit ? ": from cache" : ": written"));
    return hit;
  }

  static String run(List<String> cmd) throws IOException {
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
    Process p;
    try {
      p = pb.start();
    } catch (IOException e) {
      throw new BuildException("cannot run " + cmd.getFirst() + ": " + e.getMessage(), e);
    }
    p.getOutputStream().close();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    try {
      if (p.waitFor() != 0) {
        throw new BuildException(
            String.join(" ", cmd) + " failed (exit " + p.exitValue() + "): " + out.strip());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BuildException("interrupted", e);
    }
    return out;
  }

  /** Packages of a set of layers, for rendering. */
  static List<String> union(List<List<String>> lists) {
    LinkedHashSet<String> s = new LinkedHashSet<>();
    lists.forEach(s::addAll);
    return List.copyOf(s);
  }
}
