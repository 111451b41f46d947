package org.osfarm.build;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.osfarm.core.Digest;
import org.osfarm.core.RefDatabase;
import org.osfarm.core.Repository;

/**
 * The whole-request cache's fast lane: answers a request that was answered before, without loading
 * the classes, planning, opening the repository's object store or reading any image data.
 *
 * <p>Design: after {@link ImageBuilder#build} answers a request (a build or a cache hit), {@link
 * #record} writes {@code requests/<request key>} in the cache directory: the image's snapshot, each
 * layer's ref and snapshot, the ref the request names, and every input the plan read besides the
 * request itself, each with the value it had: the mirror-state memos (exact content; the entry
 * expires with the earliest memo's TTL, as the plan would refetch then), and the files (class
 * keyring, spec file, repository keys) by SHA-256. The request key is the SHA-256 of the request as
 * given (repository, spec file path, the flags with lists sorted and passwords digested, the ref,
 * the output formats), the builder version and the built-in class definitions. {@link #answer}
 * trusts an entry only if every recorded input still has its value, every layer ref still points at
 * its snapshot, the named ref already points at the image and every output is in the output cache;
 * then the plan would compute the same keys and find the same layers, so the answer is the one
 * {@link ImageBuilder#build} gives: the same snapshot, the same output bytes, the same lines.
 * Anything else is a miss and the caller takes the full path, which records again.
 *
 * <p>Safe for concurrent use by several processes: entries are replaced atomically; a stale entry
 * is only a miss.
 */
public final class RequestCache {
  private final Path cacheDir;
  private final boolean detachRefill;

  /**
   * A request as the command line gives it.
   *
   * @param repoDir the repository directory
   * @param specFile the spec file, or null
   * @param flags what the flags say (name, class, arch, groups, packages, root password, hostname,
   *     kernel), without the spec file's content
   * @param ref the {@code --ref} given, or null
   * @param outputs the outputs asked for
   */
  public record Request(
      Path repoDir, Path specFile, ImageSpec flags, String ref, List<OutputRequest> outputs) {}

  /**
   * A request answered from the cache.
   *
   * @param snapshot the image
   * @param layersReused its layers, all cached
   * @param outputsFromCache outputs delivered
   * @param seconds wall time of the answer
   */
  public record Hit(Digest snapshot, int layersReused, int outputsFromCache, double seconds) {}

  /**
   * @param cacheDir the build cache directory (as given to {@link ImageBuilder})
   */
  public RequestCache(Path cacheDir) {
    this(cacheDir, true);
  }

  /**
   * @param detachRefill whether a delivery makes the next spare in a detached process (the command
   *     line) or before it returns (tests: nothing keeps writing into their directories)
   */
  RequestCache(Path cacheDir, boolean detachRefill) {
    this.cacheDir = cacheDir.toAbsolutePath();
    this.detachRefill = detachRefill;
  }

  /**
   * The entry file of a request: named by a 64-bit FNV-1a hash of its canonical text, which the
   * entry holds and {@link #answer} compares in full (so a hash collision is only a miss). Not
   * SHA-256: setting up the JDK's security providers would cost more than the rest of an answer.
   */
  Path entry(String canonical) {
    long h = 0xcbf29ce484222325L;
    for (byte b : canonical.getBytes(StandardCharsets.UTF_8)) {
      h = (h ^ (b & 0xff)) * 0x100000001b3L;
    }
    String hex = Long.toHexString(h);
    return cacheDir.resolve("requests").resolve("0".repeat(16 - hex.length()) + hex);
  }

  /** The SHA-256 of the canonical request (see {@link #canonical}). */
  static Digest key(Request r) throws IOException {
    return Digest.of(canonical(r).getBytes(StandardCharsets.UTF_8));
  }

  /**
   * The request as one line per field: the request, the builder version and the code's identity;
   * lists sorted, passwords as digests, output paths left out (they are where, not what).
   */
  static String canonical(Request r) throws IOException {
    StringBuilder sb = new StringBuilder("osfarm-request 1\n");
    sb.append("builder ").append(ImageBuilder.BUILDER_VERSION).append('\n');
    sb.append("code ").append(codeIdentity()).append('\n');
    sb.append("repo ").append(r.repoDir().toAbsolutePath().normalize()).append('\n');
    sb.append("spec-file ")
        .append(r.specFile() == null ? "-" : r.specFile().toAbsolutePath().normalize())
        .append('\n');
    ImageSpec f = r.flags().normalized();
    line(sb, "name", f.name());
    line(sb, "class", f.className());
    line(sb, "arch", f.arch());
    line(sb, "groups", String.join(",", f.groups()));
    line(sb, "packages", String.join(",", f.packages()));
    line(sb, "root-password", sha(f.rootPassword()));
    line(sb, "root-password-hash", sha(f.rootPasswordHash()));
    line(sb, "hostname", f.hostname());
    line(sb, "kernel", String.valueOf(f.kernel()));
    line(sb, "ref", r.ref());
    for (OutputRequest o : r.outputs()) {
      line(sb, "output", o.format().label());
    }
    return sb.toString();
  }

  /** As {@link Canonical#sha}, without loading Canonical's JSON mapper. */
  private static String sha(String s) {
    return s == null ? null : "sha256:" + Digest.of(s.getBytes(StandardCharsets.UTF_8)).hex();
  }

  private static void line(StringBuilder sb, String k, String v) {
    // values are escaped so that no value can forge another line
    sb.append(k)
        .append(' ')
        .append(v == null ? "-" : "=" + v.replace("\\", "\\\\").replace("\n", "\\n"));
    sb.append('\n');
  }

  /**
   * What identifies the builder's code and its built-in classes: the jar it runs from (path, size,
   * time: a rebuilt or upgraded jar invalidates every entry; reading resources from a 40 MB jar
   * would open it again and cost more than the rest of an answer), else the class definitions.
   */
  static String codeIdentity() throws IOException {
    try {
      java.security.CodeSource cs = RequestCache.class.getProtectionDomain().getCodeSource();
      if (cs != null && cs.getLocation() != null) {
        Path p = Path.of(cs.getLocation().toURI());
        if (Files.isRegularFile(p)) {
          return "jar " + p + " " + Files.size(p) + " " + Files.getLastModifiedTime(p).toInstant();
        }
      }
    } catch (java.net.URISyntaxException | IllegalArgumentException | SecurityException e) {
      // not a file: identify by content
    }
    return "classes " + classesDigest();
  }

  /** The SHA-256 of the built-in class definitions (index and files, as shipped). */
  static String classesDigest() throws IOException {
    MessageDigest md = sha256();
    byte[] idx = resource("classes/index.txt");
    md.update(idx);
    for (String line : new String(idx, StandardCharsets.UTF_8).split("\n")) {
      String n = line.strip();
      if (!n.isEmpty() && !n.startsWith("#")) {
        md.update(n.getBytes(StandardCharsets.UTF_8));
        md.update(resource("classes/" + n));
      }
    }
    return Digest.of(md).hex();
  }

  private static byte[] resource(String name) throws IOException {
    try (InputStream in = ClassRegistry.resource(name)) {
      return in.readAllBytes();
    }
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  // ---------------------------------------------------------------- answer

  /**
   * Answers {@code r} from its entry if every recorded input is unchanged: reports the steps to
   * {@code l} as {@link ImageBuilder#build} would and delivers the outputs from the output cache.
   *
   * @return the answer, or empty on a miss (nothing was changed then: take the full path)
   */
  public Optional<Hit> answer(Request r, BuildListener l) {
    long t0 = System.nanoTime();
    Entry e;
    List<Path> cached = new ArrayList<>();
    try {
      String canonical = canonical(r);
      e = Entry.parse(Files.readAllLines(entry(canonical), StandardCharsets.UTF_8));
      if (e == null
          || !e.request.toString().equals(canonical)
          || !e.valid(r.repoDir().toAbsolutePath())) {
        return Optional.empty();
      }
      for (OutputRequest o : r.outputs()) {
        if (o.format() == OutputFormat.DIR) {
          return Optional.empty(); // exported from the repository every time
        }
        Path c = ImageBuilder.cachedOutput(cacheDir, e.top(), o.format());
        if (!Files.exists(c)) {
          return Optional.empty();
        }
        cached.add(c);
      }
    } catch (IOException | RuntimeException x) {
      return Optional.empty(); // no entry, or an unreadable one: the full path decides
    }
    for (String[] layer : e.layers) {
      l.step("layer " + layer[0] + " " + layer[1].substring(0, 12) + ": cached");
    }
    if (e.ref != null) {
      l.step("ref " + e.ref + ": no_change");
    }
    try {
      for (int i = 0; i < cached.size(); i++) {
        OutputRequest o = r.outputs().get(i);
        Path target = o.path().toAbsolutePath();
        if (target.getParent() != null) {
          Files.createDirectories(target.getParent());
        }
        OutputDelivery.deliver(cached.get(i), target, o.format(), detachRefill);
        l.step("output " + target + ": from cache");
      }
    } catch (IOException x) {
      throw new BuildException("cannot deliver an output: " + x.getMessage(), x);
    }
    return Optional.of(
        new Hit(
            Digest.fromHex(e.snapshot),
            e.layers.size(),
            cached.size(),
            (System.nanoTime() - t0) / 1e9));
  }

  // ---------------------------------------------------------------- record

  /**
   * Records the answer {@code res} to {@code r} (after {@link ImageBuilder#build} returned it), so
   * that the same request is answered by {@link #answer}. Does nothing for requests it cannot
   * answer (a {@code dir} output) or when an input changed while building (a memo refreshed
   * meanwhile).
   *
   * @param ref the ref the build pointed at the image (the effective one), or null
   */
  public void record(Request r, Repository repo, BuildResult res, String ref) throws IOException {
    BuildPlan plan = res.plan();
    for (OutputRequest o : r.outputs()) {
      if (o.format() == OutputFormat.DIR) {
        return;
      }
    }
    List<String> lines = new ArrayList<>();
    lines.add("snapshot " + res.snapshot().hex());
    if (ref != null) {
      lines.add("ref " + ref);
    }
    Digest top = null;
    for (PlannedLayer l : plan.layers()) {
      top = repo.refs().get(l.ref()).orElse(null);
      if (top == null) {
        return;
      }
      lines.add("layer " + l.kind().label() + " " + l.key().hex() + " " + top.hex());
    }
    if (!res.snapshot().equals(top)) {
      return;
    }
    // the mirror states the keys were computed from, and until when the plan trusts them
    DistroClass c = plan.distro();
    Path memoDir = MirrorState.memoDir(cacheDir);
    long expires = Long.MAX_VALUE;
    List<String[]> memos = new ArrayList<>();
    memos.add(
        new String[] {
          MirrorState.memo(memoDir, c.mirror(), c.suite()).toString(),
          (String) plan.layers().getFirst().inputs().get("mirrorRelease")
        });
    PlannedLayer image = null;
    for (PlannedLayer l : plan.layers()) {
      if (l.kind() == LayerKind.IMAGE) {
        image = l;
      }
    }
    List<ImageSpec.Repo> repos = plan.spec().repositories();
    for (int i = 0; i < repos.size(); i++) {
      if (image == null) {
        return;
      }
      Object release =
          ((Map<?, ?>) ((List<?>) image.inputs().get("repositories")).get(i)).get("release");
      memos.add(
          new String[] {
            MirrorState.memo(memoDir, repos.get(i).uri(), repos.get(i).suite()).toString(),
            String.valueOf(release)
          });
    }
    for (String[] m : memos) {
      String content;
      try {
        content = Files.readString(Path.of(m[0]), StandardCharsets.UTF_8).strip();
      } catch (NoSuchFileException x) {
        return;
      }
      String[] f = content.split(" ");
      if (f.length != 2 || !f[1].equals(m[1])) {
        return; // refreshed meanwhile: the next plan may compute other keys
      }
      expires = Math.min(expires, Long.parseLong(f[0]) + c.ttl().toMillis());
      lines.add("memo " + f[0] + " " + f[1] + " " + m[0]);
    }
    lines.add("expires " + expires);
    // the files the plan read
    List<Path> files = new ArrayList<>();
    if (c.keyring() != null) {
      files.add(
          c.keyring().startsWith("resource:")
              ? cacheDir.resolve("keyrings").resolve(c.keyring().substring("resource:".length()))
              : Path.of(c.keyring()));
    }
    if (r.specFile() != null) {
      files.add(r.specFile().toAbsolutePath());
    }
    for (ImageSpec.Repo x : repos) {
      if (x.key() != null && !x.key().contains("-----BEGIN")) {
        files.add(Path.of(x.key()).toAbsolutePath());
      }
    }
    for (Path p : files) {
      lines.add("file " + Digest.of(Files.readAllBytes(p)).hex() + " " + stamp(p) + " " + p);
    }
    for (OutputRequest o : r.outputs()) {
      if (!Files.exists(ImageBuilder.cachedOutput(cacheDir, plan.top().key().hex(), o.format()))) {
        return;
      }
    }
    String canonical = canonical(r);
    for (String q : canonical.split("\n")) {
      lines.add("request " + q);
    }
    Path f = entry(canonical);
    Files.createDirectories(f.getParent());
    Path tmp = Files.createTempFile(f.getParent(), ".request", ".tmp");
    try {
      Files.write(tmp, lines, StandardCharsets.UTF_8);
      Files.move(tmp, f, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /** Inode, size, mtime and ctime of a file, as one word. */
  static String stamp(Path p) throws IOException {
    Map<String, Object> a = Files.readAttributes(p, "unix:ino,size,lastModifiedTime,ctime");
    return a.get("ino")
        + ":"
        + a.get("size")
        + ":"
        + nanos(a.get("lastModifiedTime"))
        + ":"
        + nanos(a.get("ctime"));
  }

  private static long nanos(Object fileTime) {
    return ((java.nio.file.attribute.FileTime) fileTime)
        .to(java.util.concurrent.TimeUnit.NANOSECONDS);
  }

  /** A parsed entry. */
  private static final class Entry {
    final StringBuilder request = new StringBuilder();
    String snapshot;
    String ref;
    long expires = -1;
    final List<String[]> layers = new ArrayList<>(); // kind, key, snapshot
    final List<String[]> memos = new ArrayList<>(); // millis, hex, path
    final List<String[]> files = new ArrayList<>(); // sha, stamp, path

    static Entry parse(List<String> lines) {
      Entry e = new Entry();
      for (String line : lines) {
        String[] f = line.split(" ", 2);
        if (f.length != 2) {
          return null;
        }
        switch (f[0]) {
          case "request" -> e.request.append(f[1]).append('\n');
          case "snapshot" -> e.snapshot = f[1];
          case "ref" -> e.ref = f[1];
          case "expires" -> e.expires = Long.parseLong(f[1]);
          case "layer" -> e.layers.add(f[1].split(" ", 3));
          case "memo" -> e.memos.add(f[1].split(" ", 3));
          case "file" -> e.files.add(f[1].split(" ", 3));
          default -> {
            return null;
          }
        }
      }
      return e.snapshot == null || e.layers.isEmpty() || e.expires < 0 ? null : e;
    }

    String top() {
      return layers.getLast()[1];
    }

    /** Whether every recorded input still has its value (cheapest checks first). */
    boolean valid(Path repoDir) throws IOException {
      if (System.currentTimeMillis() >= expires) {
        return false;
      }
      for (String[] m : memos) {
        String now;
        try {
          now = Files.readString(Path.of(m[2]), StandardCharsets.UTF_8).strip();
        } catch (NoSuchFileException x) {
          return false;
        }
        if (!now.equals(m[0] + " " + m[1])) {
          return false;
        }
      }
      for (String[] l : layers) {
        Optional<Digest> s = RefDatabase.peek(repoDir, ImageBuilder.LAYER_REFS + l[1]);
        if (s.isEmpty() || !s.get().hex().equals(l[2])) {
          return false;
        }
      }
      if (!layers.getLast()[2].equals(snapshot)) {
        return false;
      }
      if (ref != null) {
        Optional<Digest> s = RefDatabase.peek(repoDir, ref);
        if (s.isEmpty() || !s.get().hex().equals(snapshot)) {
          return false; // the full path moves the ref
        }
      }
      for (String[] f : files) {
        try {
          Path p = Path.of(f[2]);
          // an unchanged stamp (inode, size, mtime, ctime: any write changes ctime, which no one
          // can set back) means unchanged content; else the content decides
          if (!stamp(p).equals(f[1]) && !Digest.of(Files.readAllBytes(p)).hex().equals(f[0])) {
            return false;
          }
        } catch (NoSuchFileException x) {
          return false;
        }
      }
      return true;
    }
  }
}
