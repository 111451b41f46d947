package org.osfarm.core;

import java.nio.file.Path;
import java.util.Map;

/**
 * Publishes a tar into a repository in its own JVM, so {@link SafetyTest} can kill it with SIGKILL
 * at any moment. Usage: {@code PublishMain <repo> <tar> <ref>}. Prints {@code ready} once the
 * repository is open, then each new progress phase as {@code phase <name>}, then {@code done <id>}.
 */
public final class PublishMain {
  private PublishMain() {}

  public static void main(String[] args) throws Exception {
    Path repoDir = Path.of(args[0]);
    Path tar = Path.of(args[1]);
    String ref = args[2];
    try (Repository repo = Repository.init(repoDir);
        TarSource src = TarSource.open(tar)) {
      System.out.println("ready");
      System.out.flush();
      ProgressListener phases =
          new ProgressListener() {
            private String last = "";

            @Override
            public void progress(Progress p) {
              if (!p.phase().equals(last)) {
                last = p.phase();
                System.out.println("phase " + last);
                System.out.flush();
              }
            }
          };
      PublishResult r = repo.publish(src, ref, "crash test", Map.of(), phases);
      System.out.println("done " + r.snapshot().hex());
      System.out.flush();
    }
  }
}
