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
  void pullsThroughTheServiceAndPushesOnlyWithAToken() throws Exception {
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
          .hasMessageContaining("401")
          .hasMessageContaining("OSFARM_TOKEN");
      assertThat(s.repository().refs().get("images/new")).isEmpty();

      // the write routes answer 401 with problem details (and WWW-Authenticate) without a token
      Http http = new Http(s.url());
      for (String path : List.of("/v1/objects", "/v1/refs/images/new")) {
        java.net.http.HttpResponse<String> r =
            http.send(
                http.req(path)
                    .POST(java.net.http.HttpRequest.BodyPublishers.ofString("x"))
                    .build());
        assertThat(r.statusCode()).as(path + ": " + r.body()).isEqualTo(401);
        assertThat(r.headers().firstValue("Content-Type")).hasValue("application/problem+json");
        assertThat(r.headers().firstValue("WWW-Authenticate")).isPresent();
        assertThat(OsfarmServer.JSON.readTree(r.body()).get("type").asText())
            .isEqualTo("https://osfarm.org/problems/unauthorized");
      }

      // a bad token is refused as clearly, and nothing moves
      assertThatThrownBy(
              () ->
                  ObjectTransfer.push(
                      local,
                      "images/new",
                      URI.create(s.url()),
                      "osf_not-a-token",
                      "images/new",
                      ProgressListener.NONE))
          .hasMessageContaining("401")
          .hasMessageContaining("not valid");
      assertThat(s.repository().refs().get("images/new")).isEmpty();

      // with a valid token the push lands: same snapshot, same files
      String token = s.tokens().create("pusher");
      var r =
          ObjectTransfer.push(
              local, "images/new", URI.create(s.url()), token, "images/new", ProgressListener.NONE);
      assertThat(r.snapshot()).isEqualTo(local.resolve("images/new"));
      assertThat(s.repository().refs().get("images/new")).hasValue(r.snapshot());
      try (var in =
          s.repository().openContent(s.repository().lookupFile(r.snapshot(), "x".getBytes()))) {
        assertThat(new String(in.readAllBytes())).isEqualTo("new\n");
      }
    }
  }
}
