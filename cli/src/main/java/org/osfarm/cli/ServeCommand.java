package org.osfarm.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.osfarm.server.OsfarmServer;
import org.osfarm.server.Settings;
import org.osfarm.transfer.ImageProtocol;
import org.osfarm.transfer.ObjectProtocol;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParentCommand;
import picocli.CommandLine.Spec;

@Command(
    name = "serve",
    description = {
      "Run the osfarm service (web UI, REST API, jobs, object protocol) until interrupted.",
      "",
      "Run the osfarm service until interrupted: the web UI and REST API (/api/v1, OpenAPI at "
          + "/api/v1/openapi.json), the URL interface (/create), the build job queue, /metrics, and "
          + "the object protocol for other osfarm hosts (/v1: pull, push). With --images, also the "
          + "image files of DIR for block-level 'osfarm fetch' (/v1/images).",
      "",
      "Every setting can also come from the environment: OSFARM_LISTEN, OSFARM_SERVER_DB, "
          + "OSFARM_SERVER_DATA, OSFARM_OPEN_READ, OSFARM_REQUIRE_TOKENS, OSFARM_WORKERS, "
          + "OSFARM_MAX_QUEUED, OSFARM_UPLOAD_LIMIT, OSFARM_SYNC_TIMEOUT, OSFARM_EXPORTS_MAX "
          + "(options win). Requests that change anything need 'Authorization: Bearer TOKEN' "
          + "('osfarm token create')."
    })
final class ServeCommand implements Callable<Integer> {
  @ParentCommand OsfarmCommand top;
  @Spec CommandSpec spec;

  @Option(names = "--listen", paramLabel = "HOST:PORT", description = "Default 127.0.0.1:8080.")
  String listen;

  @Option(names = "--images", paramLabel = "DIR", description = "Offer the files in DIR.")
  Path images;

  @Option(
      names = "--allow-push",
      description =
          "Accept objects and ref updates from peers without a token (trusted networks only).")
  boolean allowPush;

  @Option(
      names = "--block-size",
      paramLabel = "N",
      description = "Index the images for this block size at start (default 4096).")
  int blockSize = 4096;

  @Option(names = "--workers", paramLabel = "N", description = "Build workers (default 2).")
  Integer workers;

  @Option(names = "--max-queued", paramLabel = "N", description = "Queued jobs before 503.")
  Integer maxQueued;

  @Option(names = "--db", paramLabel = "FILE", description = "Job and token database.")
  Path database;

  @Option(names = "--data", paramLabel = "DIR", description = "Job outputs and logs.")
  Path dataDir;

  @Option(names = "--upload-limit", paramLabel = "SIZE", description = "e.g. 1M (default).")
  String uploadLimit;

  @Option(names = "--sync-timeout", paramLabel = "DURATION", description = "e.g. PT30M.")
  String syncTimeout;

  @Option(
      names = "--read-token-required",
      description = "Reading and downloading need a token too (default: open).")
  boolean readTokenRequired;

  @Override
  public Integer call() throws Exception {
    if (images != null && !Files.isDirectory(images)) {
      throw new IllegalArgumentException("--images " + images + " is not a directory");
    }
    Settings s = Settings.fromEnvironment(top.repoDir(), System.getenv());
    if (listen != null) {
      s = s.withListen(Settings.parseListen(listen));
    }
    if (workers != null) {
      s = s.withWorkers(workers);
    }
    if (maxQueued != null) {
      s = s.withMaxQueued(maxQueued);
    }
    if (database != null) {
      s = s.withDatabase(database);
    }
    if (dataDir != null) {
      s = s.withDataDir(dataDir);
    }
    if (uploadLimit != null) {
      s = s.withUploadLimit(Settings.parseSize(uploadLimit));
    }
    if (syncTimeout != null) {
      s = s.withSyncTimeout(Duration.parse(syncTimeout));
    }
    if (readTokenRequired) {
      s = s.withOpenRead(false);
    }
    OsfarmServer server = new OsfarmServer(s);
    boolean push = allowPush;
    server.mountOnRepository(
        "/v1",
        repo -> new ObjectProtocol(repo, true), // pushes need a token, or --allow-push
        push ? (m, p) -> false : OsfarmServer.TokenRule.OBJECT_PROTOCOL);
    if (images != null) {
      ImageProtocol ip = new ImageProtocol(images);
      ip.prepare(blockSize);
      // Read-only: its POST only names the blocks to send.
      server.mount("/v1/images", ip, (m, p) -> false);
    }
    server.start();
    try {
      spec.commandLine()
          .getErr()
          .printf(
              "serving %s%s at %s (push %s)%n",
              s.repository(),
              images == null ? "" : " and images in " + images,
              server.url(),
              allowPush ? "allowed without a token" : "with a token");
      spec.commandLine().getErr().flush();
      CountDownLatch forever = new CountDownLatch(1);
      Runtime.getRuntime().addShutdownHook(new Thread(forever::countDown));
      forever.await();
    } finally {
      server.stop();
    }
    return 0;
  }
}
