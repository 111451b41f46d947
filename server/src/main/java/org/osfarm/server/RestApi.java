package org.osfarm.server;

import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStreamWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.osfarm.build.DistroClass;
import org.osfarm.build.ImageSpec;
import org.osfarm.build.OutputFormat;
import org.osfarm.build.SpecException;
import org.osfarm.build.SpecParser;
import org.osfarm.catalog.Catalog;
import org.osfarm.catalog.PackageChange;
import org.osfarm.catalog.PackageInfo;
import org.osfarm.core.Bytes;
import org.osfarm.core.Change;
import org.osfarm.core.Digest;
import org.osfarm.core.Entry;
import org.osfarm.core.EntryType;
import org.osfarm.core.RefDatabase;
import org.osfarm.core.RefUpdate;
import org.osfarm.core.RepositoryStats;
import org.osfarm.core.Snapshot;

/** The REST API under {@code /api/v1} and the URL interface {@code /create}. */
final class RestApi {
  private final OsfarmServer s;

  RestApi(OsfarmServer s) {
    this.s = s;
  }

  void routes(RoutesConfig r) {
    r.get("/api/v1/openapi.json", this::openapi);
    r.get("/api/v1/status", ctx -> OsfarmServer.json(ctx, status()));
    r.get("/api/v1/classes", ctx -> OsfarmServer.json(ctx, classes()));
    r.get("/api/v1/refs", ctx -> OsfarmServer.json(ctx, refs(false)));
    r.get("/api/v1/images", ctx -> OsfarmServer.json(ctx, refs(true)));
    r.get("/api/v1/refs/<name>", this::getRef);
    r.put("/api/v1/refs/<name>", this::putRef);
    r.delete("/api/v1/refs/<name>", this::deleteRef);
    r.get("/api/v1/snapshots/{id}", ctx -> OsfarmServer.json(ctx, snapshot(id(ctx))));
    r.get("/api/v1/snapshots/{id}/history", this::history);
    r.get("/api/v1/snapshots/{id}/manifest", this::manifest);
    r.get("/api/v1/snapshots/{id}/tree", this::tree);
    r.get("/api/v1/snapshots/{id}/packages", this::packages);
    r.get("/api/v1/snapshots/{id}/download", this::downloadSnapshot);
    r.head("/api/v1/snapshots/{id}/download", this::downloadSnapshot);
    r.get("/api/v1/diff", this::diff);
    r.get("/api/v1/find", ctx -> OsfarmServer.json(ctx, find(ctx)));
    r.get("/api/v1/snapshots/{id}/provenance", ctx -> OsfarmServer.json(ctx, provenance(id(ctx))));
    r.get("/api/v1/snapshots/{id}/derived", ctx -> OsfarmServer.json(ctx, derived(id(ctx))));
    r.get("/api/v1/packages", this::searchPackages);
    r.get(
        "/api/v1/jobs",
        ctx -> OsfarmServer.json(ctx, s.jobs.recent(100).stream().map(RestApi::job).toList()));
    r.post("/api/v1/jobs", this::postJob);
    r.get("/api/v1/jobs/{id}", ctx -> OsfarmServer.json(ctx, job(job(ctx))));
    r.get("/api/v1/jobs/{id}/log", this::log);
    r.get("/api/v1/jobs/{id}/download", this::downloadJob);
    r.head("/api/v1/jobs/{id}/download", this::downloadJob);
    r.get("/create", this::create);
  }

  // ---------------------------------------------------------------- reading

  private void openapi(Context ctx) throws IOException {
    try (InputStream in = RestApi.class.getResourceAsStream("openapi.json")) {
      ctx.contentType("application/json");
      ctx.result(in.readAllBytes());
    }
  }

  Map<String, Object> status() {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("queued", s.jobs.queued());
    m.put("running", s.jobs.running());
    m.put("workers", s.jobs.workers());
    m.put("cacheHitRate", s.metrics.cacheHitRate());
    RepositoryStats st = s.repo.stats();
    m.put("refs", st.refs());
    m.put("snapshots", st.snapshots());
    m.put("objects", st.objects());
    m.put("logicalBytes", st.logicalBytes());
    m.put("storedBytes", st.storedBytes());
    m.put("dedupRatio", st.dedupRatio());
    return m;
  }

  List<Map<String, Object>> classes() {
    List<Map<String, Object>> out = new ArrayList<>();
    for (DistroClass c : s.jobs.images().classes()) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("name", c.name());
      m.put("description", c.description());
      m.put("family", c.family());
      m.put("suite", c.suite());
      m.put("mirror", c.mirror());
      m.put("components", c.components());
      m.put("architectures", c.architectures());
      m.put("defaultGroups", c.defaultGroups());
      m.put("groups", new java.util.TreeMap<>(c.groups()));
      out.add(m);
    }
    out.sort(java.util.Comparator.comparing(m -> (String) m.get("name")));
    return out;
  }

  /** Refs (images only: not the builder's layer cache or the catalog's own refs). */
  List<Map<String, Object>> refs(boolean imagesOnly) {
    List<Map<String, Object>> out = new ArrayList<>();
    for (var e : s.repo.refs().list().entrySet()) {
      if (imagesOnly && !isImage(e.getKey())) {
        continue;
      }
      Snapshot snap = s.repo.readSnapshot(e.getValue());
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("name", e.getKey());
      m.put("snapshot", e.getValue().hex());
      m.put("time", snap.time());
      m.put("message", snap.message());
      out.add(m);
    }
    return out;
  }

  static boolean isImage(String ref) {
    return !ref.startsWith("cache/")
        && !ref.startsWith(Catalog.OWN_REFS)
        && !ref.startsWith("staging/");
  }

  private void getRef(Context ctx) {
    String name = refName(ctx);
    Digest id =
        s.repo.refs().get(name).orElseThrow(() -> Problem.notFound("no ref '" + name + "'"));
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("name", name);
    m.put("snapshot", id.hex());
    m.put("history", history(id, 50));
    OsfarmServer.json(ctx, m);
  }

  private void putRef(Context ctx) throws IOException {
    String who = s.requireToken(ctx);
    String name = refName(ctx);
    String target;
    try {
      var node = OsfarmServer.JSON.readTree(ctx.bodyInputStream());
      target = node == null || node.get("target") == null ? null : node.get("target").asText();
    } catch (IOException e) {
      throw Problem.badRequest("the body must be JSON like {\"target\": \"SNAPSHOT-OR-REF\"}");
    }
    if (target == null || target.isBlank()) {
      throw Problem.badRequest("the body must be JSON like {\"target\": \"SNAPSHOT-OR-REF\"}");
    }
    s.repo.resolve(target); // 404 before anything changes
    RefUpdate u = s.repo.tag(name, target);
    s.catalog.add(s.repo.resolve(name), name);
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("name", name);
    m.put("snapshot", s.repo.resolve(name).hex());
    m.put("result", u.name().toLowerCase(Locale.ROOT));
    m.put("by", who);
    OsfarmServer.json(ctx, m);
  }

  private void deleteRef(Context ctx) {
    s.requireToken(ctx);
    String name = refName(ctx);
    s.repo.deleteRef(name);
    s.catalog.sync();
    ctx.status(204);
  }

  private static String refName(Context ctx) {
    String name = ctx.pathParam("name");
    try {
      RefDatabase.validateName(name);
    } catch (IllegalArgumentException e) {
      throw new Problem(400, "invalid-ref", "Invalid ref name", e.getMessage());
    }
    return name;
  }

  Digest id(Context ctx) {
    return resolve(ctx.pathParam("id"));
  }

  Digest resolve(String spec) {
    if (spec == null || spec.isBlank()) {
      throw Problem.badRequest("give a snapshot id or ref");
    }
    return s.repo.resolve(spec);
  }

  Map<String, Object> snapshot(Digest id) {
    Snapshot snap = s.repo.readSnapshot(id);
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("id", id.hex());
    m.put("time", snap.time());
    m.put("message", snap.message());
    m.put("parents", snap.parents().stream().map(Digest::hex).toList());
    m.put("tree", snap.tree().hex());
    m.put("metadata", snap.metadata());
    List<String> names = new ArrayList<>();
    s.repo
        .refs()
        .list()
        .forEach(
            (k, v) -> {
              if (v.equals(id)) {
                names.add(k);
              }
            });
    m.put("refs", names);
    return m;
  }

  List<Map<String, Object>> history(Digest id, int max) {
    List<Map<String, Object>> out = new ArrayList<>();
    for (var e : s.repo.history(id, max)) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("id", e.getKey().hex());
      m.put("time", e.getValue().time());
      m.put("message", e.getValue().message());
      out.add(m);
    }
    return out;
  }

  private void history(Context ctx) {
    OsfarmServer.json(ctx, history(id(ctx), 200));
  }

  private void manifest(Context ctx) throws IOException {
    Digest id = id(ctx);
    ctx.contentType("text/plain; charset=utf-8");
    BufferedWriter w =
        new BufferedWriter(
            new OutputStreamWriter(ctx.outputStream(), StandardCharsets.UTF_8), 1 << 16);
    s.repo.manifest(
        id,
        line -> {
          try {
            w.write(line);
            w.write('\n');
          } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
          }
        });
    w.flush();
  }

  List<Map<String, Object>> listDir(Digest id, String path) {
    byte[] p = Bytes.unescape(path == null ? "" : path.replaceAll("^/+|/+$", ""));
    Entry dir = s.repo.lookup(id, p);
    if (dir.type() != EntryType.DIR) {
      throw Problem.badRequest("'" + path + "' is not a directory");
    }
    List<Map<String, Object>> out = new ArrayList<>();
    for (Entry e : s.repo.readTree(dir.content())) {
      out.add(entry(e));
    }
    return out;
  }

  static Map<String, Object> entry(Entry e) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("name", Bytes.escape(e.name()));
    m.put("type", e.type().name().toLowerCase(Locale.ROOT));
    m.put("mode", String.format("%04o", e.mode() & 07777));
    m.put("uid", e.uid());
    m.put("gid", e.gid());
    m.put("size", e.size());
    m.put("mtime", e.mtimeSeconds());
    if (e.type() == EntryType.FILE && e.fileDigest() != null) {
      m.put("digest", e.fileDigest().hex());
    }
    if (e.link() != null && e.link().length > 0) {
      m.put("link", Bytes.escape(e.link()));
    }
    return m;
  }

  private void tree(Context ctx) {
    OsfarmServer.json(ctx, listDir(id(ctx), ctx.queryParam("path")));
  }

  List<PackageInfo> packagesOf(Digest id) {
    s.catalog.add(id, null);
    return s.catalog.packages(id);
  }

  private void packages(Context ctx) {
    OsfarmServer.json(ctx, packagesOf(id(ctx)));
  }

  /**
   * Catalog search, the same query as {@code osfarm find}: {@code path}, {@code digest}, {@code
   * package} (NAME, NAME=VERSION, NAME<VERSION), {@code name} (glob), {@code label} (K=V), {@code
   * text}; each may repeat; all given criteria intersect; {@code latest=1} keeps only what refs
   * name now.
   */
  List<Map<String, Object>> find(Context ctx) {
    org.osfarm.catalog.FindQuery.Builder q =
        org.osfarm.catalog.FindQuery.builder()
            .latest(
                "1".equals(ctx.queryParam("latest")) || "true".equals(ctx.queryParam("latest")));
    given(ctx, "path").forEach(q::path);
    given(ctx, "name").forEach(q::name);
    given(ctx, "text").forEach(q::word);
    try {
      for (String d : given(ctx, "digest")) {
        String h = d.toLowerCase(Locale.ROOT);
        if (!Digest.isHex(h)) {
          throw Problem.badRequest("digest '" + d + "': expected 64 hex digits (SHA-256)");
        }
        q.digest(Digest.fromHex(h));
      }
      for (String p : given(ctx, "package")) {
        q.pkg(org.osfarm.catalog.PackageSpec.parse(p));
      }
      for (String l : given(ctx, "label")) {
        int eq = l.indexOf('=');
        if (eq <= 0) {
          throw Problem.badRequest("label '" + l + "': expected KEY=VALUE");
        }
        q.label(l.substring(0, eq), l.substring(eq + 1));
      }
      org.osfarm.catalog.FindQuery query = q.build();
      s.catalog.sync();
      List<Map<String, Object>> out = new ArrayList<>();
      for (org.osfarm.catalog.Match m : s.catalog.find(query)) {
        Map<String, Object> mm = new LinkedHashMap<>();
        mm.put("snapshot", m.snapshot().hex());
        mm.put("time", m.time().toString());
        mm.put("message", m.message());
        mm.put("refs", m.refs());
        List<Map<String, Object>> entries = new ArrayList<>();
        for (org.osfarm.catalog.Match.Found f : m.entries()) {
          Map<String, Object> e = new LinkedHashMap<>();
          e.put("path", f.path());
          e.put("type", f.type());
          e.put("size", f.size());
          e.put("digest", f.digest() == null ? null : f.digest().hex());
          e.put("detail", f.detail());
          entries.add(e);
        }
        mm.put("entries", entries);
        out.add(mm);
      }
      return out;
    } catch (IllegalArgumentException | org.osfarm.catalog.CatalogException e) {
      throw Problem.badRequest(e.getMessage());
    }
  }

  /** The non-blank values of a query parameter (a search form sends empty fields too). */
  static List<String> given(Context ctx, String name) {
    return ctx.queryParams(name).stream().map(String::trim).filter(v -> !v.isEmpty()).toList();
  }

  /** True if the request carries any search criterion. */
  static boolean hasCriteria(Context ctx) {
    for (String k : List.of("path", "digest", "package", "name", "label", "text")) {
      if (!given(ctx, k).isEmpty()) {
        return true;
      }
    }
    return false;
  }

  /** How a snapshot came to be: metadata (spec, builder, layer keys), lineage, labels. */
  Map<String, Object> provenance(Digest id) {
    s.catalog.add(id, null);
    org.osfarm.catalog.Provenance p = s.catalog.provenance(id, 32);
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("snapshot", p.snapshot().hex());
    m.put("time", p.time().toString());
    m.put("message", p.message());
    m.put("refs", p.refs());
    m.put("metadata", p.metadata());
    m.put("lineage", p.lineage().stream().map(RestApi::related).toList());
    m.put("labels", p.labels());
    return m;
  }

  /** Snapshots derived from this one (children, overlays, installs, built on it as a layer). */
  List<Map<String, Object>> derived(Digest id) {
    s.catalog.sync();
    return s.catalog.derived(id, true).stream().map(RestApi::related).toList();
  }

  private static Map<String, Object> related(org.osfarm.catalog.Related r) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("snapshot", r.snapshot().hex());
    m.put("kind", r.kind());
    m.put("depth", r.depth());
    m.put("present", r.present());
    m.put("time", r.time() == null ? null : r.time().toString());
    m.put("message", r.message());
    m.put("refs", r.refs());
    return m;
  }

  /** Changes from a to b: files and packages. */
  Map<String, Object> diff(Digest a, Digest b) {
    List<Map<String, Object>> files = new ArrayList<>();
    for (Change c : s.repo.diff(a, b)) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("kind", String.valueOf(c.kind()));
      m.put("path", Bytes.escape(c.path()));
      m.put("what", c.what());
      files.add(m);
    }
    s.catalog.add(a, null);
    s.catalog.add(b, null);
    List<Map<String, Object>> pkgs = new ArrayList<>();
    for (PackageChange pc : s.catalog.packageChanges(a, b)) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("kind", pc.kind().name().toLowerCase(Locale.ROOT));
      m.put("name", pc.name());
      m.put("before", pc.before() == null ? null : pc.before().version());
      m.put("after", pc.after() == null ? null : pc.after().version());
      pkgs.add(m);
    }
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("from", a.hex());
    m.put("to", b.hex());
    m.put("files", files);
    m.put("packages", pkgs);
    return m;
  }

  private void diff(Context ctx) {
    String from = ctx.queryParam("from");
    String to = ctx.queryParam("to");
    if (from == null || to == null) {
      throw Problem.badRequest("give from= and to= (snapshot ids or refs)");
    }
    OsfarmServer.json(ctx, diff(resolve(from), resolve(to)));
  }

  List<PackageIndex.Package> searchPackages(String cls, String arch, String component, String q)
      throws IOException {
    DistroClass c = distro(cls);
    String a = arch == null || arch.isBlank() ? c.architectures().getFirst() : arch;
    if (!c.architectures().contains(a)) {
      throw Problem.badRequest("class " + c.name() + " has no architecture '" + a + "'");
    }
    String comp = component == null || component.isBlank() ? c.components().getFirst() : component;
    if (!c.components().contains(comp)) {
      throw Problem.badRequest(
          "class " + c.name() + " has no component '" + comp + "' (" + c.components() + ")");
    }
    return s.packageIndex.search(c.mirror(), c.suite(), comp, a, q, 50);
  }

  DistroClass distro(String cls) {
    for (DistroClass c : s.jobs.images().classes()) {
      if (c.name().equals(cls)) {
        return c;
      }
    }
    throw new Problem(
        400,
        "invalid-spec",
        "Unknown class",
        "unknown class '"
            + cls
            + "'; known: "
            + s.jobs.images().classes().stream().map(DistroClass::name).sorted().toList());
  }

  private void searchPackages(Context ctx) throws IOException {
    OsfarmServer.json(
        ctx,
        searchPackages(
            ctx.queryParam("class"),
            ctx.queryParam("arch"),
            ctx.queryParam("component"),
            ctx.queryParam("q")));
  }

  // ---------------------------------------------------------------- downloads

  private void downloadSnapshot(Context ctx) throws IOException {
    Digest id = id(ctx);
    String f = ctx.queryParam("format");
    OutputFormat format = OutputFormat.parse(f == null ? "tar.gz" : f);
    Downloads.Prepared p = s.downloads.export(s.repo, id, format);
    String name = ctx.queryParam("name");
    if (name == null || !name.matches("[A-Za-z0-9._+-]{1,64}")) {
      name = id.shortHex(12);
    }
    s.downloads.serve(
        ctx,
        p.file(),
        p.sha256(),
        name + "." + Downloads.extension(format),
        Downloads.contentType(format.label()));
  }

  private void downloadJob(Context ctx) throws IOException {
    Job j = job(ctx);
    serveJob(ctx, j);
  }

  void serveJob(Context ctx, Job j) throws IOException {
    if (j.state() != Job.State.DONE) {
      throw new Problem(
          409,
          "not-ready",
          "Job not done",
          "job " + j.id() + " is " + j.stateLabel() + (j.error() == null ? "" : ": " + j.error()));
    }
    Path out = Path.of(j.output());
    if (!Files.exists(out)) {
      throw new Problem(410, "gone", "Output gone", "the output of job " + j.id() + " was removed");
    }
    s.downloads.serve(ctx, out, j.outputDigest(), j.fileName(), Downloads.contentType(j.format()));
  }

  // ---------------------------------------------------------------- jobs

  Job job(Context ctx) {
    String id = ctx.pathParam("id");
    return s.jobs.get(id).orElseThrow(() -> Problem.notFound("no job " + id));
  }

  static Map<String, Object> job(Job j) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("id", j.id());
    m.put("url", "/api/v1/jobs/" + j.id());
    m.put("name", j.name());
    m.put("format", j.format());
    m.put("state", j.stateLabel());
    m.put("stage", j.currentStage());
    m.put("stages", j.stages());
    m.put("error", j.error());
    m.put("snapshot", j.snapshot());
    m.put("layersBuilt", j.layersBuilt());
    m.put("layersReused", j.layersReused());
    m.put("checksum", j.checksum());
    m.put("requester", j.requester());
    m.put("created", j.created());
    m.put("started", j.started());
    m.put("finished", j.finished());
    if (j.state() == Job.State.DONE) {
      m.put("download", "/api/v1/jobs/" + j.id() + "/download");
      m.put("size", j.outputSize());
      m.put("sha256", j.outputDigest());
    }
    return m;
  }

  private void postJob(Context ctx) throws IOException {
    String who = s.requireToken(ctx);
    String body = readBody(ctx);
    String ct = ctx.contentType() == null ? "" : ctx.contentType().toLowerCase(Locale.ROOT);
    ImageSpec spec = parseSpec(body, ct, "request body");
    OutputFormat format = format(ctx.queryParam("format"));
    JobQueue.Submission sub = s.jobs.submit(spec, format, who);
    ctx.status(sub.deduplicated() ? 200 : 201);
    ctx.header("Location", "/api/v1/jobs/" + sub.job().id());
    OsfarmServer.json(ctx, job(sub.job()));
  }

  String readBody(Context ctx) throws IOException {
    try (InputStream in = ctx.bodyInputStream()) {
      byte[] b = in.readNBytes((int) Math.min(Integer.MAX_VALUE - 8, s.settings.uploadLimit() + 1));
      if (b.length > s.settings.uploadLimit()) {
        throw new Problem(
            413,
            "too-large",
            "Request too large",
            "the spec is larger than " + s.settings.uploadLimit() + " bytes");
      }
      return new String(b, StandardCharsets.UTF_8);
    }
  }

  static ImageSpec parseSpec(String text, String contentTypeOrName, String origin) {
    if (text.isBlank()) {
      throw new Problem(400, "invalid-spec", "Invalid image spec", "the spec is empty");
    }
    String t = contentTypeOrName.toLowerCase(Locale.ROOT);
    SpecParser.Syntax syntax =
        t.contains("xml")
            ? SpecParser.Syntax.XML
            : t.contains("json")
                ? SpecParser.Syntax.JSON
                : t.contains("yaml") || t.endsWith(".yml") ? SpecParser.Syntax.YAML : sniff(text);
    try {
      return SpecParser.parse(text, syntax, origin);
    } catch (SpecException e) {
      throw new Problem(400, "invalid-spec", "Invalid image spec", e.getMessage());
    }
  }

  private static SpecParser.Syntax sniff(String text) {
    String t = text.stripLeading();
    return t.startsWith("<")
        ? SpecParser.Syntax.XML
        : t.startsWith("{") ? SpecParser.Syntax.JSON : SpecParser.Syntax.YAML;
  }

  static OutputFormat format(String f) {
    try {
      return OutputFormat.parse(f == null || f.isBlank() ? "tar.gz" : f);
    } catch (IllegalArgumentException | SpecException e) {
      throw Problem.badRequest(e.getMessage());
    }
  }

  private void log(Context ctx) throws IOException {
    Job j = job(ctx);
    ctx.contentType("text/plain; charset=utf-8");
    ctx.result(logTail(j.id(), 256 * 1024));
  }

  String logTail(String id, int max) throws IOException {
    Path f = s.jobs.logFile(id);
    if (!Files.exists(f)) {
      return "";
    }
    try (var ch = java.nio.channels.FileChannel.open(f)) {
      long size = ch.size();
      long start = Math.max(0, size - max);
      java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate((int) (size - start));
      while (b.hasRemaining() && ch.read(b, start + b.position()) > 0) {}
      return new String(b.array(), 0, b.position(), StandardCharsets.UTF_8);
    }
  }

  // ---------------------------------------------------------------- the URL interface

  /**
   * {@code GET /create?name=&class=&arch=&filetype=&group=..&package=..[&async=1]}: synchronous, it
   * answers with the image; asynchronous, with 202 and the job's URL (body and Location).
   */
  private void create(Context ctx) throws Exception {
    String who = s.requireToken(ctx);
    String cls = ctx.queryParam("class");
    if (cls == null || cls.isBlank()) {
      throw Problem.badRequest("give class= (see /api/v1/classes)");
    }
    String arch = blankToNull(ctx.queryParam("arch"));
    String name = blankToNull(ctx.queryParam("name"));
    if (name == null) {
      name = cls + (arch == null ? "" : "-" + arch);
    }
    ImageSpec.Builder b = ImageSpec.builder().name(name).className(cls).arch(arch);
    b.groupsList(ctx.queryParams("group"));
    b.packagesList(ctx.queryParams("package"));
    ImageSpec spec = b.build();
    OutputFormat format = format(ctx.queryParam("filetype"));
    JobQueue.Submission sub = s.jobs.submit(spec, format, who);
    String url = base(ctx) + "/api/v1/jobs/" + sub.job().id();
    String async = ctx.queryParam("async");
    if (async != null && (async.equals("1") || async.equalsIgnoreCase("true"))) {
      ctx.status(202);
      ctx.header("Location", url);
      ctx.contentType("text/plain; charset=utf-8");
      ctx.result(url + "\n");
      return;
    }
    Job j = s.jobs.await(sub.job().id(), s.settings.syncTimeout());
    if (j.state() == Job.State.FAILED) {
      throw new Problem(
          422, "build-failed", "Build failed", "job " + j.id() + " failed: " + j.error());
    }
    if (j.state() != Job.State.DONE) {
      ctx.header("Location", url);
      throw new Problem(
          504,
          "build-timeout",
          "Build still running",
          "job " + j.id() + " is still " + j.stateLabel() + "; follow " + url,
          Map.of("Location", url));
    }
    serveJob(ctx, j);
  }

  static String base(Context ctx) {
    String host = ctx.header("Host");
    return "http://" + (host == null ? "localhost" : host);
  }

  private static String blankToNull(String v) {
    return v == null || v.isBlank() ? null : v.trim();
  }
}
