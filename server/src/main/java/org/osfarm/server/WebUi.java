package org.osfarm.server;

import gg.jte.ContentType;
import gg.jte.TemplateEngine;
import gg.jte.output.StringOutput;
import io.javalin.config.RoutesConfig;
import io.javalin.http.Context;
import io.javalin.http.Cookie;
import io.javalin.http.SameSite;
import io.javalin.http.UploadedFile;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.osfarm.build.ImageSpec;
import org.osfarm.build.OutputFormat;
import org.osfarm.core.Digest;

/**
 * The server-rendered web UI (jte templates, precompiled at build time; htmx for the live parts:
 * package search as you type, job progress and log). Every page works without JavaScript except the
 * live updates.
 */
final class WebUi {
  private static final TemplateEngine JTE = TemplateEngine.createPrecompiled(ContentType.Html);
  static final List<String> FORMATS = List.of("tar.gz", "tar.zst", "tar", "raw", "qcow2", "oci");
  private final OsfarmServer s;
  private final RestApi api;

  WebUi(OsfarmServer s) {
    this.s = s;
    this.api = new RestApi(s);
  }

  void routes(RoutesConfig r) {
    r.get("/style.css", this::css);
    r.get("/assets/htmx.min.js", this::htmx);
    r.get("/", ctx -> requestPage(ctx, "simple", "Request an image"));
    r.get("/request/advanced", ctx -> requestPage(ctx, "advanced", "Advanced request"));
    r.get("/request/appliance", ctx -> requestPage(ctx, "appliance", "Virtual appliance request"));
    r.post("/request", this::request);
    r.get("/ui/packages", this::packageSearch);
    r.get("/upload", ctx -> page(ctx, "upload.jte", Map.of()));
    r.post("/upload", this::upload);
    r.get("/jobs", ctx -> page(ctx, "jobs.jte", Map.of()));
    r.get(
        "/ui/jobs/table",
        ctx -> fragment(ctx, "jobs_table.jte", Map.of("jobs", s.jobs.recent(100))));
    r.get("/jobs/{id}", ctx -> page(ctx, "job.jte", Map.of("job", api.job(ctx))));
    r.get("/ui/jobs/{id}/status", this::jobStatus);
    r.get("/repo", ctx -> page(ctx, "images.jte", Map.of("refs", api.refs(true))));
    r.get("/repo/refs/<name>", this::ref);
    r.get("/repo/snapshots/{id}", this::snapshot);
    r.get("/repo/snapshots/{id}/tree", this::tree);
    r.get("/repo/diff", this::diff);
    r.get("/repo/search", this::search);
    r.get("/status", ctx -> page(ctx, "status.jte", Map.of("status", api.status())));
    r.get("/login", ctx -> page(ctx, "login.jte", Map.of()));
    r.post("/login", this::login);
    r.post("/logout", this::logout);
  }

  private void css(Context ctx) throws IOException {
    try (InputStream in = WebUi.class.getResourceAsStream("style.css")) {
      ctx.contentType("text/css");
      ctx.header("Cache-Control", "max-age=3600");
      ctx.result(in.readAllBytes());
    }
  }

  /** htmx from its webjar (the path inside the jar carries the webjar's version). */
  private void htmx(Context ctx) throws IOException {
    java.util.Properties pom = new java.util.Properties();
    try (InputStream in =
        WebUi.class.getResourceAsStream(
            "/META-INF/maven/org.webjars.npm/htmx.org/pom.properties")) {
      pom.load(in);
    }
    String path =
        "/META-INF/resources/webjars/htmx.org/" + pom.getProperty("version") + "/dist/htmx.min.js";
    try (InputStream in = WebUi.class.getResourceAsStream(path)) {
      ctx.contentType("text/javascript");
      ctx.header("Cache-Control", "max-age=86400");
      ctx.result(in.readAllBytes());
    }
  }

  private String user(Context ctx) {
    try {
      return s.caller(ctx).orElse(null);
    } catch (Problem p) {
      return null;
    }
  }

  private void page(Context ctx, String template, Map<String, Object> params) {
    Map<String, Object> p = new HashMap<>(params);
    p.put("user", user(ctx));
    ctx.html(render(template, p));
  }

  private void fragment(Context ctx, String template, Map<String, Object> params) {
    ctx.html(render(template, params));
  }

  static String render(String template, Map<String, Object> params) {
    StringOutput out = new StringOutput();
    JTE.render(template, params, out);
    return out.toString();
  }

  static String errorPage(OsfarmServer s, Context ctx, Problem p) {
    String user = null;
    try {
      user = s.caller(ctx).orElse(null);
    } catch (RuntimeException e) {
      // a bad token: show the page signed out
    }
    Map<String, Object> m = new HashMap<>();
    m.put("user", user);
    m.put("status", p.status);
    m.put("title", p.title);
    m.put("detail", p.getMessage());
    return render("error.jte", m);
  }

  // ---------------------------------------------------------------- requests

  private void requestPage(Context ctx, String mode, String title) {
    page(
        ctx,
        "request.jte",
        Map.of("title", title, "mode", mode, "classes", api.classes(), "formats", FORMATS));
  }

  private void request(Context ctx) throws Exception {
    String who = s.requireToken(ctx);
    String mode = Optional.ofNullable(ctx.formParam("mode")).orElse("simple");
    ImageSpec.Builder b =
        ImageSpec.builder()
            .name(ctx.formParam("name"))
            .className(ctx.formParam("class"))
            .arch(blank(ctx.formParam("arch")));
    if (!mode.equals("simple")) { // a simple request gets the class's default groups
      b.groupsList(ctx.formParams("group"));
      b.packagesList(words(ctx.formParam("packages")));
    }
    if (mode.equals("appliance")) {
      words(ctx.formParam("services")).forEach(b::service);
      String host = blank(ctx.formParam("hostname"));
      if (host != null) {
        b.hostname(host);
      }
      String files = Optional.ofNullable(ctx.formParam("files")).orElse("");
      for (String line : files.split("\r?\n")) {
        if (line.isBlank()) {
          continue;
        }
        int eq = line.indexOf('=');
        if (eq <= 0 || !line.startsWith("/")) {
          throw Problem.badRequest("file rule '" + line + "': write /path=content");
        }
        b.file(line.substring(0, eq).trim(), "0644", line.substring(eq + 1));
      }
      String fb = blank(ctx.formParam("firstboot"));
      if (fb != null) {
        b.firstBoot("web", fb.replace("\r\n", "\n"));
      }
    }
    OutputFormat format = RestApi.format(ctx.formParam("format"));
    submitted(ctx, s.jobs.submit(b.build(), format, who), "sync".equals(ctx.formParam("delivery")));
  }

  private void submitted(Context ctx, JobQueue.Submission sub, boolean sync) throws Exception {
    String id = sub.job().id();
    if (sync) {
      Job j = s.jobs.await(id, s.settings.syncTimeout());
      if (j.state() == Job.State.DONE) {
        ctx.redirect("/api/v1/jobs/" + id + "/download", io.javalin.http.HttpStatus.SEE_OTHER);
        return;
      }
    }
    ctx.redirect("/jobs/" + id, io.javalin.http.HttpStatus.SEE_OTHER);
  }

  private void upload(Context ctx) throws Exception {
    String who = s.requireToken(ctx);
    String text = null;
    String origin = "upload";
    UploadedFile f = ctx.uploadedFile("spec");
    if (f != null && f.size() > 0) {
      if (f.size() > s.settings.uploadLimit()) {
        throw new Problem(413, "too-large", "Request too large", "the spec file is too large");
      }
      try (InputStream in = f.content()) {
        text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
      }
      origin = f.filename();
    } else {
      text = ctx.formParam("text");
    }
    if (text == null || text.isBlank()) {
      throw new Problem(
          400, "invalid-spec", "Invalid image spec", "choose a spec file or paste one");
    }
    ImageSpec spec = RestApi.parseSpec(text, origin, origin);
    submitted(ctx, s.jobs.submit(spec, RestApi.format(ctx.formParam("format")), who), false);
  }

  private void packageSearch(Context ctx) throws IOException {
    String q = Optional.ofNullable(ctx.queryParam("q")).orElse("");
    List<Map<String, String>> results = new ArrayList<>();
    if (!q.isBlank()) {
      for (PackageIndex.Package p :
          api.searchPackages(
              ctx.queryParam("class"), ctx.queryParam("arch"), ctx.queryParam("component"), q)) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("name", p.name());
        m.put("version", p.version());
        m.put("section", p.section());
        m.put("description", p.description());
        results.add(m);
      }
    }
    fragment(ctx, "packages.jte", Map.of("results", results, "query", q));
  }

  private void jobStatus(Context ctx) throws IOException {
    Job j = api.job(ctx);
    String log = api.logTail(j.id(), 16 * 1024);
    fragment(ctx, "job_status.jte", Map.of("job", j, "log", log));
    if (j.state().finished()) {
      ctx.status(286); // htmx: stop polling
    }
  }

  // ---------------------------------------------------------------- repository

  private void ref(Context ctx) {
    String name = ctx.pathParam("name");
    Digest id =
        s.repo.refs().get(name).orElseThrow(() -> Problem.notFound("no ref '" + name + "'"));
    page(ctx, "ref.jte", Map.of("name", name, "history", api.history(id, 100)));
  }

  private void snapshot(Context ctx) {
    Digest id = api.id(ctx);
    page(
        ctx,
        "snapshot.jte",
        Map.of(
            "snap",
            api.snapshot(id),
            "packages",
            api.packagesOf(id),
            "formats",
            FORMATS,
            "derived",
            api.derived(id)));
  }

  /** Catalog search: which images hold a path, a file, a package (version), a label, a word. */
  private void search(Context ctx) {
    Map<String, Object> p = new HashMap<>();
    for (String k : List.of("path", "digest", "package", "name", "label", "text")) {
      p.put(k.equals("package") ? "pkg" : k, String.join(" ", RestApi.given(ctx, k)));
    }
    p.put("latest", "1".equals(ctx.queryParam("latest")));
    p.put("results", RestApi.hasCriteria(ctx) ? api.find(ctx) : null);
    page(ctx, "search.jte", p);
  }

  private void tree(Context ctx) {
    Digest id = api.id(ctx);
    String path = Optional.ofNullable(ctx.queryParam("path")).orElse("").replaceAll("^/+|/+$", "");
    page(ctx, "tree.jte", Map.of("id", id.hex(), "path", path, "entries", api.listDir(id, path)));
  }

  private void diff(Context ctx) {
    String from = ctx.queryParam("from");
    String to = ctx.queryParam("to");
    if (from == null || to == null) {
      throw Problem.badRequest("choose two versions to compare");
    }
    page(ctx, "diff.jte", Map.of("diff", api.diff(api.resolve(from), api.resolve(to))));
  }

  // ---------------------------------------------------------------- sign in

  private void login(Context ctx) {
    String token = Optional.ofNullable(ctx.formParam("token")).orElse("").trim();
    if (s.tokens.verify(token).isEmpty()) {
      throw OsfarmServer.unauthorized("that token is not valid");
    }
    Cookie c = new Cookie(OsfarmServer.cookieName(), token);
    c.setHttpOnly(true);
    c.setSameSite(SameSite.STRICT);
    c.setPath("/");
    ctx.cookie(c);
    ctx.redirect("/", io.javalin.http.HttpStatus.SEE_OTHER);
  }

  private void logout(Context ctx) {
    ctx.removeCookie(OsfarmServer.cookieName(), "/");
    ctx.redirect("/", io.javalin.http.HttpStatus.SEE_OTHER);
  }

  private static String blank(String v) {
    return v == null || v.isBlank() ? null : v.trim();
  }

  private static List<String> words(String v) {
    if (v == null || v.isBlank()) {
      return List.of();
    }
    return List.of(v.trim().split("[\\s,]+"));
  }
}
