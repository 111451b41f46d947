package org.osfarm.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;
import io.javalin.Javalin;
import io.javalin.compression.CompressionStrategy;
import io.javalin.http.Context;
import io.javalin.http.HandlerType;
import io.javalin.http.HttpResponseException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.osfarm.build.ClassRegistry;
import org.osfarm.build.ImageBuilder;
import org.osfarm.build.SpecException;
import org.osfarm.catalog.Catalog;
import org.osfarm.core.InvalidInputException;
import org.osfarm.core.NotFoundException;
import org.osfarm.core.Repository;
import org.osfarm.transfer.ProtocolHandler;
import org.osfarm.transfer.ProtocolRequest;
import org.osfarm.transfer.ProtocolResponse;
import org.osfarm.transfer.TransferException;

/**
 * The osfarm service: web UI, REST API under {@code /api/v1}, the URL interface {@code /create},
 * Prometheus metrics at {@code /metrics}, and any mounted object-protocol handlers.
 *
 * <p>Usage: {@code new OsfarmServer(settings).mount("/v1", handler, TokenRule.NON_GET).start()};
 * {@link #stop()} (or close) ends it. Threads: HTTP requests run on the web server's virtual
 * threads; builds on the queue's {@code workers} platform threads. Thin by design: handlers parse,
 * call one API of the modules below, and map results and exceptions to responses.
 */
public final class OsfarmServer implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(OsfarmServer.class.getName());

  static final ObjectMapper JSON =
      new ObjectMapper()
          .registerModule(new JavaTimeModule())
          .disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS)
          .enable(SerializationFeature.INDENT_OUTPUT);

  final Settings settings;
  private final ImageService imageOverride;
  private final List<Mount> mounts = new ArrayList<>();

  Repository repo;
  Catalog catalog;
  ServerDatabase db;
  TokenStore tokens;
  JobQueue jobs;
  Downloads downloads;
  PackageIndex packageIndex;
  ServerMetrics metrics;
  private Javalin app;

  /** A plain-Java protocol handler mounted under a path prefix (made at start from the repo). */
  private static final class Mount {
    final String prefix;
    final java.util.function.Function<Repository, ProtocolHandler> factory;
    final TokenRule rule;
    ProtocolHandler handler;

    Mount(
        String prefix,
        java.util.function.Function<Repository, ProtocolHandler> factory,
        TokenRule rule) {
      this.prefix = prefix;
      this.factory = factory;
      this.rule = rule;
    }

    String prefix() {
      return prefix;
    }
  }

  /** A service over the real builder ({@link ImageBuilder} with the built-in classes). */
  public OsfarmServer(Settings settings) {
    this(settings, null);
  }

  /** A service whose builds go to {@code images} (null: the real builder). */
  public OsfarmServer(Settings settings, ImageService images) {
    this.settings = settings;
    this.imageOverride = images;
  }

  /** Which requests to a mounted handler need a token: given the method and the path below it. */
  @FunctionalInterface
  public interface TokenRule {
    boolean needsToken(String method, String path);

    /** Every request other than GET and HEAD needs a token. */
    TokenRule NON_GET = (m, p) -> !m.equals("GET") && !m.equals("HEAD");

    /**
     * The object protocol of the transfer module: receiving objects ({@code POST /objects}) and
     * moving refs ({@code POST /refs/NAME}) need a token; pulls (GET, and the POSTs {@code
     * /objects/missing} and {@code /objects/pack} that only read) do not.
     */
    TokenRule OBJECT_PROTOCOL =
        (m, p) ->
            m.equals("POST") && (p.equals("/objects") || p.startsWith("/refs/"))
                || m.equals("PUT")
                || m.equals("DELETE");
  }

  /**
   * Mounts a plain-Java protocol handler under {@code prefix} before {@link #start}; it sees the
   * (percent-decoded) path below the prefix; the longest matching prefix wins. Reads follow the
   * {@code openRead} setting; {@code rule} says which requests need a token.
   */
  public OsfarmServer mount(String prefix, ProtocolHandler handler, TokenRule rule) {
    return mountOnRepository(prefix, repo -> handler, rule);
  }

  /**
   * Mounts a protocol handler made from the service's repository when the service starts, e.g.
   * {@code mountOnRepository("/v1", repo -> new ObjectProtocol(repo, allowPush),
   * TokenRule.OBJECT_PROTOCOL)}.
   */
  public OsfarmServer mountOnRepository(
      String prefix,
      java.util.function.Function<Repository, ProtocolHandler> factory,
      TokenRule rule) {
    if (app != null) {
      throw new IllegalStateException("mount handlers before start()");
    }
    if (!prefix.startsWith("/") || prefix.endsWith("/")) {
      throw new IllegalArgumentException("mount prefix must start and not end with '/': " + prefix);
    }
    mounts.add(new Mount(prefix, factory, rule));
    mounts.sort(Comparator.comparingInt((Mount m) -> m.prefix().length()).reversed());
    return this;
  }

  /** The repository the service serves (open after {@link #start}). */
  public Repository repository() {
    return repo;
  }

  /** The token store (open after {@link #start}). */
  public TokenStore tokens() {
    return tokens;
  }

  /** Opens the repository, catalog and database, starts the workers and binds the address. */
  public synchronized OsfarmServer start() {
    if (app != null) {
      throw new IllegalStateException("already started");
    }
    repo = Repository.init(settings.repository());
    catalog = Catalog.open(repo);
    try {
      catalog.sync();
    } catch (RuntimeException e) {
      LOG.log(Level.WARNING, "catalog sync failed; packages may be missing until it works", e);
    }
    db = ServerDatabase.open(settings.database());
    tokens = new TokenStore(db);
    metrics = new ServerMetrics();
    for (Mount m : mounts) {
      m.handler = m.factory.apply(repo);
    }
    ImageService images =
        imageOverride != null
            ? imageOverride
            : new BuilderImageService(
                new ImageBuilder(repo, ClassRegistry.builtIn(), settings.buildCache()),
                repo,
                settings.buildCache().resolve("work"));
    jobs =
        new JobQueue(
            new JobStore(db),
            images,
            settings.dataDir().resolve("jobs"),
            settings.workers(),
            settings.maxQueued(),
            metrics,
            saltKey(settings.dataDir().resolve("password-salt.key")));
    downloads =
        new Downloads(
            settings.dataDir().resolve("exports"),
            settings.buildCache().resolve("work"),
            settings.workers(),
            settings.maxQueued(),
            settings.syncTimeout(),
            settings.exportsMax(),
            metrics);
    packageIndex = new PackageIndex(settings.dataDir().resolve("indices"), Duration.ofHours(6));
    metrics.gauge("osfarm.queue.length", "jobs waiting", jobs::queued);
    metrics.gauge("osfarm.jobs.running", "jobs building", jobs::running);
    metrics.gauge("osfarm.workers", "build workers", jobs::workers);
    jobs.start();

    RestApi api = new RestApi(this);
    WebUi ui = new WebUi(this);
    app =
        Javalin.create(
            config -> {
              config.concurrency.useVirtualThreads = true;
              config.http.maxRequestSize = settings.uploadLimit();
              config.http.compressionStrategy = CompressionStrategy.NONE;
              config.startup.showJavalinBanner = false;
              config.routes.before(this::guard);
              config.routes.after(this::count);
              api.routes(config.routes);
              ui.routes(config.routes);
              config.routes.get("/metrics", this::metrics);
              for (String prefix : mounts.stream().map(Mount::prefix).distinct().toList()) {
                for (HandlerType t :
                    List.of(
                        HandlerType.GET,
                        HandlerType.HEAD,
                        HandlerType.POST,
                        HandlerType.PUT,
                        HandlerType.DELETE)) {
                  config.routes.addHttpHandler(t, prefix, this::mounted);
                  config.routes.addHttpHandler(t, prefix + "/<rest>", this::mounted);
                }
              }
              config.routes.exception(Exception.class, this::failure);
              config.routes.error(
                  404,
                  ctx -> {
                    String ct = ctx.res().getContentType();
                    if (ct == null || !ct.startsWith("application/problem+json")) {
                      problem(
                          ctx, Problem.notFound("nothing at " + ctx.method() + " " + ctx.path()));
                    }
                  });
            });
    InetSocketAddress a = settings.listen();
    app.start(a.getHostString(), a.getPort());
    LOG.info("osfarm serving " + settings.repository() + " on " + url());
    return this;
  }

  /**
   * The service's secret for password salts: 32 random bytes, made once, readable by owner only.
   */
  private static byte[] saltKey(Path file) {
    try {
      if (!Files.exists(file)) {
        Files.createDirectories(file.getParent());
        Path tmp =
            Files.createTempFile(
                file.getParent(),
                ".key-",
                ".tmp",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        byte[] k = new byte[32];
        new SecureRandom().nextBytes(k);
        Files.write(tmp, k);
        try {
          Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
        } catch (FileAlreadyExistsException e) {
          Files.deleteIfExists(tmp); // another process made it first: use theirs
        }
      }
      byte[] k = Files.readAllBytes(file);
      if (k.length < 32) {
        throw new IllegalStateException(
            file + " is damaged (" + k.length + " bytes): remove it to make a new one");
      }
      return k;
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("cannot read or create " + file, e);
    }
  }

  /**
   * Runs the service with {@link Settings#fromEnvironment} until interrupted (for benchmarks and
   * for running the service without the CLI; {@code osfarm serve} is the usual way).
   */
  public static void main(String[] args) throws InterruptedException {
    Settings settings = Settings.fromEnvironment(null, System.getenv());
    OsfarmServer s = new OsfarmServer(settings).start();
    System.err.println("osfarm serving " + settings.repository() + " on " + s.url());
    Runtime.getRuntime().addShutdownHook(new Thread(s::stop));
    new java.util.concurrent.CountDownLatch(1).await();
  }

  /** The bound port. */
  public int port() {
    return app.port();
  }

  /** The service's base URL, e.g. {@code http://127.0.0.1:8080}. */
  public String url() {
    String host = settings.listen().getHostString();
    if (host.contains(":")) {
      host = "[" + host + "]";
    }
    return "http://" + host + ":" + port();
  }

  /** Stops serving, stops the workers (a running build is interrupted) and closes everything. */
  public synchronized void stop() {
    if (app != null) {
      app.stop();
      app = null;
    }
    if (jobs != null) {
      jobs.close();
    }
    if (downloads != null) {
      downloads.close();
    }
    if (catalog != null) {
      catalog.close();
    }
    if (db != null) {
      db.close();
    }
    if (repo != null) {
      repo.close();
    }
  }

  @Override
  public void close() {
    stop();
  }

  // ---------------------------------------------------------------- auth

  private static final String COOKIE = "osfarm_token";

  /** The name of the request's valid token, or empty (no token given). Throws for a bad token. */
  Optional<String> caller(Context ctx) {
    String h = ctx.header("Authorization");
    String token = null;
    if (h != null) {
      if (!h.regionMatches(true, 0, "Bearer ", 0, 7)) {
        throw unauthorized("use 'Authorization: Bearer TOKEN' (see 'osfarm token create')");
      }
      token = h.substring(7).trim();
    } else if (ctx.cookie(COOKIE) != null) {
      token = ctx.cookie(COOKIE);
    }
    if (token == null) {
      return Optional.empty();
    }
    Optional<String> who = tokens.verify(token);
    if (who.isEmpty()) {
      throw unauthorized("the token is not valid (revoked, mistyped or from another service)");
    }
    return who;
  }

  /** The caller's name; throws 401 unless a valid token came with the request. */
  String requireToken(Context ctx) {
    if (!settings.requireTokens()) {
      return caller(ctx).orElse("anonymous");
    }
    return caller(ctx)
        .orElseThrow(
            () ->
                unauthorized(
                    "this request changes something and needs a token: 'Authorization: Bearer"
                        + " TOKEN' (create one with 'osfarm token create NAME'), or sign in at"
                        + " /login"));
  }

  static Problem unauthorized(String detail) {
    return new Problem(
        401,
        "unauthorized",
        "Unauthorized",
        detail,
        Map.of("WWW-Authenticate", "Bearer realm=\"osfarm\""));
  }

  static String cookieName() {
    return COOKIE;
  }

  private void guard(Context ctx) {
    ctx.attribute("t0", System.nanoTime());
    String len = ctx.header("Content-Length");
    if (len != null && mounted(ctx.path()) == null) { // object packs may be large: no limit there
      try {
        if (Long.parseLong(len.trim()) > settings.uploadLimit()) {
          throw new Problem(
              413,
              "too-large",
              "Request too large",
              "the request body has "
                  + len.trim()
                  + " bytes; this service accepts at most "
                  + settings.uploadLimit());
        }
      } catch (NumberFormatException e) {
        throw Problem.badRequest("bad Content-Length");
      }
    }
    if (!settings.openRead()) {
      String p = ctx.path();
      boolean open =
          p.equals("/login")
              || p.startsWith("/assets/")
              || p.equals("/api/v1/openapi.json")
              || p.equals("/style.css");
      if (!open && caller(ctx).isEmpty()) {
        throw unauthorized("reading this service needs a token (OSFARM_OPEN_READ=false)");
      }
    }
  }

  private void count(Context ctx) {
    Object t0 = ctx.attribute("t0");
    if (t0 instanceof Long start) {
      io.micrometer.core.instrument.Timer.builder("osfarm.http.requests")
          .tag("method", ctx.method().name())
          .tag("status", Integer.toString(ctx.statusCode()))
          .register(metrics.registry)
          .record(System.nanoTime() - start, java.util.concurrent.TimeUnit.NANOSECONDS);
    }
  }

  private void metrics(Context ctx) {
    ctx.contentType("text/plain; version=0.0.4; charset=utf-8");
    ctx.result(metrics.registry.scrape());
  }

  // ---------------------------------------------------------------- mounted protocol handlers

  private Mount mounted(String path) {
    for (Mount x : mounts) {
      if (path.equals(x.prefix()) || path.startsWith(x.prefix() + "/")) {
        return x;
      }
    }
    return null;
  }

  private void mounted(Context ctx) throws IOException {
    String path = ctx.path();
    Mount m = mounted(path);
    if (m == null) {
      throw Problem.notFound("nothing at " + path);
    }
    String method = ctx.method().name();
    String raw = ctx.req().getRequestURI();
    String rest =
        java.net.URLDecoder.decode(
            raw.substring(Math.min(raw.length(), m.prefix().length())).replace("+", "%2B"),
            StandardCharsets.UTF_8);
    if (rest.isEmpty()) {
      rest = "/";
    }
    if (m.rule.needsToken(method, rest)) {
      requireToken(ctx);
    }
    Map<String, String> q = new HashMap<>();
    ctx.queryParamMap().forEach((k, v) -> q.put(k, v.isEmpty() ? "" : v.getFirst()));
    ProtocolResponse r;
    try {
      r = m.handler.handle(new ProtocolRequest(method, rest, q, ctx.bodyInputStream()));
    } catch (TransferException e) {
      throw Problem.badRequest(e.getMessage());
    }
    ctx.status(r.status());
    ctx.contentType(r.contentType());
    r.headers().forEach(ctx::header);
    if (r.length() >= 0) {
      ctx.header("Content-Length", Long.toString(r.length()));
    }
    if (method.equals("HEAD") || r.length() == 0) {
      return;
    }
    OutputStream out = ctx.outputStream();
    r.body().writeTo(out);
    out.flush();
  }

  // ---------------------------------------------------------------- errors

  private void failure(Exception e, Context ctx) {
    Problem p =
        switch (e) {
          case Problem x -> x;
          case SpecException x ->
              new Problem(400, "invalid-spec", "Invalid image spec", x.getMessage());
          case NotFoundException x -> Problem.notFound(x.getMessage());
          case InvalidInputException x -> Problem.badRequest(x.getMessage());
          case IllegalArgumentException x -> Problem.badRequest(x.getMessage());
          case HttpResponseException x ->
              new Problem(
                  x.getStatus(),
                  x.getStatus() == 413 ? "too-large" : "http-" + x.getStatus(),
                  io.javalin.http.HttpStatus.forStatus(x.getStatus()).getMessage(),
                  x.getStatus() == 413
                      ? "the request body is larger than this service accepts ("
                          + settings.uploadLimit()
                          + " bytes)"
                      : x.getMessage());
          default -> {
            LOG.log(Level.WARNING, "internal error on " + ctx.method() + " " + ctx.path(), e);
            yield new Problem(500, "internal", "Internal error", e.toString());
          }
        };
    problem(ctx, p);
  }

  void problem(Context ctx, Problem p) {
    ctx.status(p.status);
    // An error is no answer to keep: a 404 of an object that a push adds later must not stick in a
    // cache in front of the service (404s are cacheable by default, RFC 9111 4.2.2).
    ctx.header("Cache-Control", "no-store");
    p.headers.forEach(ctx::header);
    boolean html =
        !ctx.path().startsWith("/api/")
            && !ctx.path().equals("/create")
            && Optional.ofNullable(ctx.header("Accept")).orElse("").contains("text/html");
    if (html) {
      ctx.html(WebUi.errorPage(this, ctx, p));
      return;
    }
    Map<String, Object> body = new LinkedHashMap<>();
    body.put("type", p.type());
    body.put("title", p.title);
    body.put("status", p.status);
    body.put("detail", p.getMessage());
    body.put("instance", ctx.path());
    ctx.contentType("application/problem+json");
    try {
      ctx.result(JSON.writeValueAsBytes(body));
    } catch (IOException e) {
      ctx.result(("{\"status\":" + p.status + "}").getBytes(StandardCharsets.UTF_8));
    }
  }

  static void json(Context ctx, Object body) {
    ctx.contentType("application/json");
    try {
      ctx.result(JSON.writeValueAsBytes(body));
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }
}
