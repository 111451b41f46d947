package org.osfarm.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.DirectorySource;
import org.osfarm.core.ProgressListener;
import org.osfarm.core.Repository;
import org.osfarm.transfer.ObjectProtocol;
import org.osfarm.transfer.ObjectTransfer;

/** The transfer module's object protocol mounted on the service: pull works, push needs a token. */
class ObjectProtocolMountTest {
  @TempDir Path tmp;

  @Test
  void pullsThroughTheServiceAndRefusesAnonymousPush() throws Exception {
    ServerFixture.demoRepository(tmp.resolve("repo"), tmp);
    try (OsfarmServer s =
            new OsfarmServer(ServerFixture.settings(tmp))
                .mountOnRepository(
                    "/v1",
                    repo -> new ObjectProtocol(repo, true),
                    OsfarmServer.TokenRule.OBJECT_PROTOCOL)
                .start();
        Repository local = Repository.init(tmp.resolve("local"))) {
      ObjectTransfer.pull(
          local, URI.create(s.url()), "images/demo", "images/demo", ProgressListener.NONE);
      assertThat(local.resolve("images/demo")).isEqualTo(s.repository().resolve("images/demo"));
      List<String> a = new ArrayList<>();
      List<String> b = new ArrayList<>();
      local.manifest(local.resolve("images/demo"), a::add);
      s.repository().manifest(s.repository().resolve("images/demo"), b::add);
      assertThat(a).isEqualTo(b).isNotEmpty();

      // a new snapshot pushed without a token is refused and the service's refs do not change
      Path t = tmp.resolve("new");
      Files.createDirectories(t);
      Files.writeString(t.resolve("x"), "new\n");
      local.publish(
          new DirectorySource(t, ProgressListener.NONE),
          "images/new",
          "n",
          Map.of(),
          ProgressListener.NONE);
      assertThatThrownBy(
              () ->
                  ObjectTransfer.push(
                      local,
                      "images/new",
                      URI.create(s.url()),
                      "images/new",
                      ProgressListener.NONE))
          .hasMessageContaining("401");
      assertThat(s.repository().refs().get("images/new")).isEmpty();
    }
  }
}
