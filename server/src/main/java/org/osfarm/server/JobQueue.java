package org.osfarm.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.osfarm.build.BuildListener;
import org.osfarm.build.ImageSpec;
import org.osfarm.build.OutputFormat;
import org.osfarm.build.SpecException;

/**
 * The build queue.
 *
 * <p>Design: the jobs table is the queue. {@code submit} inserts a queued row, unless a queued or
 * running job with the same checksum (normalized spec + format) exists, which it returns instead:
 * identical concurrent requests build once. A fixed set of worker threads (the {@code workers}
 * setting) claim the oldest queued row, run the build, and record the outcome; HTTP requests are
 * served by the web server's own threads, so a slow build never blocks downloads or pages. The
 * number of queued jobs is bounded ({@code maxQueued}); beyond it submit refuses with 503. On
 * start, a job left running by a previous process is failed with a clear message (a build is not
 * resumed from its middle; its finished layers are reused when it is requested again) and queued
 * jobs run.
 */
final class JobQueue implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(JobQueue.class.getName());

  static final ObjectMapper SPEC_JSON =
      JsonMapper.builder()
          .enable(MapperFeature.SORT_PROPERTIES_ALPHABETICALLY)
          .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS)
          .build();

  private final JobStore store;
  private final ImageService images;
  private final Path jobsDir;
  private final int workers;
  private final int maxQueued;
  private final ServerMetrics metrics;
  private final byte[] saltKey;
  private final Object signal = new Object();
  private final List<Thread> threads = new ArrayList<>();
  private volatile boolean stopping;

  JobQueue(
      JobStore store,
      ImageService images,
      Path jobsDir,
      int workers,
      int maxQueued,
      ServerMetrics metrics,
      byte[] saltKey) {
    this.saltKey = saltKey.clone();
    this.store = store;
    this.images = images;
    this.jobsDir = jobsDir;
    this.workers = workers;
    this.maxQueued = maxQueued;
    this.metrics = metrics;
  }

  /** A submitted request: its job and whether an identical job was already there. */
  record Submission(Job job, boolean deduplicated) {}

  void start() {
    List<String> failed = store.recoverAfterRestart();
    if (!failed.isEmpty()) {
      LOG.warning("jobs interrupted by the last stop, failed: " + failed);
    }
    for (int i = 0; i < workers; i++) {
      Thread t = Thread.ofPlatform().name("osfarm-build-" + i).daemon().unstarted(this::work);
      threads.add(t);
      t.start();
    }
  }

  ImageService images() {
    return images;
  }

  /** Checks the spec and enqueues it (or finds the identical job already queued or running). */
  Submission submit(ImageSpec request, OutputFormat format, String requester) {
    Validation.imageName(request.name());
    ImageSpec spec = withoutClearPassword(request);
    if (format == OutputFormat.DIR) {
      throw Problem.badRequest(
          "format dir is a directory and cannot be downloaded; use tar, tar.gz, tar.zst, raw,"
              + " qcow2 or oci");
    }
    try {
      images.check(spec, format);
    } catch (SpecException e) {
      throw new Problem(400, "invalid-spec", "Invalid image spec", e.getMessage());
    }
    String json;
    try {
      json = SPEC_JSON.writeValueAsString(spec.normalized());
    } catch (JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
    String checksum = sha256(json + "\n" + format.label());
    synchronized (this) {
      Optional<Job> same = store.active(checksum);
      if (same.isPresent()) {
        metrics.requestsDeduplicated.increment();
        return new Submission(same.get(), true);
      }
      if (store.count(Job.State.QUEUED) >= maxQueued) {
        throw new Problem(
            503,
            "queue-full",
            "Build queue full",
            maxQueued + " jobs are waiting; try again later",
            java.util.Map.of("Retry-After", "60"));
      }
      Job j =
          new Job(
              newId(),
              checksum,
              spec.name(),
              json,
              format.label(),
              Job.State.QUEUED,
              List.of(),
              null,
              null,
              null,
              0,
              null,
              0,
              0,
              requester,
              Instant.now(),
              null,
              null);
      store.insert(j);
      synchronized (signal) {
        signal.notifyAll();
      }
      return new Submission(store.get(j.id()).orElseThrow(), false);
    }
  }

  /**
   * The spec with its root and user passwords replaced by SHA-512 crypt hashes, so the job row (and
   * the build) never hold them in clear. The salt is derived from the account and password with a
   * key of this service (HMAC-SHA-256): the same password gives the same hash here, so identical
   * requests still share a job and a cached image layer, while the hash is useless for precomputed
   * tables.
   */
  ImageSpec withoutClearPassword(ImageSpec s) {
    boolean clear =
        s.rootPassword() != null || s.users().stream().anyMatch(u -> u.password() != null);
    if (!clear) {
      return s;
    }
    List<ImageSpec.User> users =
        s.users().stream()
            .map(
                u ->
                    u.password() == null
                        ? u
                        : new ImageSpec.User(
                            u.name(),
                            null,
                            cryptHash(u.name(), u.password()),
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
        null,
        users,
        s.hostname(),
        s.files(),
        s.scripts(),
        s.kernel(),
        s.services(),
        s.firstBoot(),
        s.rootPassword() == null ? s.rootPasswordHash() : cryptHash("root", s.rootPassword()));
  }

  private String cryptHash(String account, String password) {
    byte[] mac;
    try {
      javax.crypto.Mac hmac = javax.crypto.Mac.getInstance("HmacSHA256");
      hmac.init(new javax.crypto.spec.SecretKeySpec(saltKey, "HmacSHA256"));
      mac = hmac.doFinal((account + ":" + password).getBytes(StandardCharsets.UTF_8));
    } catch (java.security.GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
    StringBuilder salt = new StringBuilder();
    for (int i = 0; i < 16; i++) {
      salt.append(ShaCrypt.saltChar(mac[i]));
    }
    return ShaCrypt.sha512(password, salt.toString());
  }

  Optional<Job> get(String id) {
    return store.get(id);
  }

  List<Job> recent(int max) {
    return store.recent(max);
  }

  int queued() {
    return store.count(Job.State.QUEUED);
  }

  int running() {
    return store.count(Job.State.RUNNING);
  }

  int workers() {
    return workers;
  }

  /** Waits until the job finishes or {@code timeout} passes; returns its latest state. */
  Job await(String id, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      Job j = store.get(id).orElseThrow(() -> Problem.notFound("no job " + id));
      if (j.state().finished() || System.nanoTime() > deadline) {
        return j;
      }
      synchronized (signal) {
        signal.wait(250);
      }
    }
  }

  /** The job's build log file (may not exist yet). */
  Path logFile(String id) {
    return jobsDir.resolve(id).resolve("build.log");
  }

  private void work() {
    while (!stopping) {
      Optional<Job> next;
      try {
        next = store.claimNext();
      } catch (RuntimeException e) {
        if (stopping) {
          return;
        }
        LOG.log(Level.WARNING, "cannot claim a job", e);
        next = Optional.empty();
      }
      if (next.isEmpty()) {
        synchronized (signal) {
          try {
            signal.wait(1000);
          } catch (InterruptedException e) {
            return;
          }
        }
        continue;
      }
      run(next.get());
      synchronized (signal) {
        signal.notifyAll();
      }
    }
  }

  private void run(Job j) {
    Path dir = jobsDir.resolve(j.id());
    long t0 = System.nanoTime();
    try {
      Files.createDirectories(dir);
      ImageSpec spec = SPEC_JSON.readValue(j.spec(), ImageSpec.class);
      OutputFormat format = OutputFormat.parse(j.format());
      Path out = dir.resolve(j.fileName());
      try (BufferedWriter log =
          Files.newBufferedWriter(
              logFile(j.id()),
              StandardCharsets.UTF_8,
              StandardOpenOption.CREATE,
              StandardOpenOption.APPEND)) {
        BuildListener l = new JobListener(j.id(), log);
        l.step("started on " + Thread.currentThread().getName());
        ImageService.Outcome o = images.build(spec, "images/" + j.name(), out, format, l);
        String digest = sha256(out);
        long size = Files.size(out);
        l.step(
            "done: snapshot "
                + o.snapshot().shortHex(12)
                + ", "
                + o.layersBuilt()
                + " layers built, "
                + o.layersReused()
                + " reused");
        store.finish(
            j.id(),
            o.snapshot().hex(),
            out.toString(),
            size,
            digest,
            o.layersBuilt(),
            o.layersReused());
        metrics.buildsOk.increment();
        metrics.layersBuilt.increment(o.layersBuilt());
        metrics.layersReused.increment(o.layersReused());
        if (o.outputFromCache()) {
          metrics.outputsFromCache.increment();
        }
      }
    } catch (Exception | Error e) {
      if (stopping) {
        // The service is stopping and interrupted this build: the row stays "running" and the
        // next start fails it with a clear message (the same path as after a crash).
        LOG.info("job " + j.id() + " interrupted by stop");
        return;
      }
      String msg = e.getMessage() == null ? e.toString() : e.getMessage();
      LOG.log(Level.WARNING, "job " + j.id() + " failed", e);
      try {
        store.addStage(j.id(), "failed: " + msg);
        store.fail(j.id(), msg);
      } catch (RuntimeException e2) {
        LOG.log(Level.SEVERE, "cannot record the failure of job " + j.id(), e2);
      }
      metrics.buildsFailed.increment();
      if (e instanceof Error err && !(e instanceof AssertionError)) {
        throw err;
      }
    } finally {
      metrics.buildTime.record(System.nanoTime() - t0, TimeUnit.NANOSECONDS);
    }
  }

  /** Records steps in the jobs table and every line in the job's log file. */
  private final class JobListener implements BuildListener {
    private final String id;
    private final BufferedWriter log;

    JobListener(String id, BufferedWriter log) {
      this.id = id;
      this.log = log;
    }

    @Override
    public void step(String message) {
      store.addStage(id, message);
      log("== " + message);
    }

    @Override
    public void log(String line) {
      synchronized (log) {
        try {
          log.write(line);
          log.write('\n');
          log.flush();
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      }
    }
  }

  static String sha256(String s) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  static String sha256(Path file) throws IOException {
    try (InputStream in = Files.newInputStream(file)) {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      byte[] buf = new byte[1 << 16];
      int n;
      while ((n = in.read(buf)) > 0) {
        md.update(buf, 0, n);
      }
      return HexFormat.of().formatHex(md.digest());
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String newId() {
    byte[] b = new byte[8];
    new java.security.SecureRandom().nextBytes(b);
    return HexFormat.of().formatHex(b);
  }

  @Override
  public void close() {
    stopping = true;
    synchronized (signal) {
      signal.notifyAll();
    }
    for (Thread t : threads) {
      t.interrupt();
    }
    for (Thread t : threads) {
      try {
        t.join(5000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }
}
