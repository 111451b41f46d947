package org.osfarm.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SettingsTest {
  @Test
  void everySettingComesFromTheEnvironment() {
    Settings s =
        Settings.fromEnvironment(
            null,
            Map.of(
                "OSFARM_REPO", "/srv/osfarm/repo",
                "OSFARM_LISTEN", "[::1]:9090",
                "OSFARM_SERVER_DB", "/srv/osfarm/jobs.db",
                "OSFARM_SERVER_DATA", "/srv/osfarm/data",
                "OSFARM_CACHE", "/srv/osfarm/cache",
                "OSFARM_OPEN_READ", "false",
                "OSFARM_REQUIRE_TOKENS", "yes",
                "OSFARM_WORKERS", "4",
                "OSFARM_UPLOAD_LIMIT", "512K",
                "OSFARM_SYNC_TIMEOUT", "PT5M"));
    assertThat(s.repository()).isEqualTo(Path.of("/srv/osfarm/repo"));
    assertThat(s.listen().getHostString()).isEqualTo("0:0:0:0:0:0:0:1");
    assertThat(s.listen().getPort()).isEqualTo(9090);
    assertThat(s.database()).isEqualTo(Path.of("/srv/osfarm/jobs.db"));
    assertThat(s.dataDir()).isEqualTo(Path.of("/srv/osfarm/data"));
    assertThat(s.buildCache()).isEqualTo(Path.of("/srv/osfarm/cache"));
    assertThat(s.openRead()).isFalse();
    assertThat(s.requireTokens()).isTrue();
    assertThat(s.workers()).isEqualTo(4);
    assertThat(s.uploadLimit()).isEqualTo(512 * 1024);
    assertThat(s.syncTimeout()).isEqualTo(Duration.ofMinutes(5));

    Settings d = Settings.fromEnvironment(Path.of("/r"), Map.of());
    assertThat(d.database()).isEqualTo(Path.of("/r/server.db"));
    assertThat(d.dataDir()).isEqualTo(Path.of("/r/server"));
    assertThat(d.listen().getPort()).isEqualTo(8080);
    assertThat(d.openRead()).isTrue();
  }

  @Test
  void badValuesSayWhatIsWrong() {
    assertThatThrownBy(
            () -> Settings.fromEnvironment(Path.of("/r"), Map.of("OSFARM_OPEN_READ", "maybe")))
        .hasMessageContaining("OSFARM_OPEN_READ");
    assertThatThrownBy(() -> Settings.parseListen("localhost")).hasMessageContaining("HOST:PORT");
    assertThatThrownBy(() -> Settings.parseSize("lots")).hasMessageContaining("512K");
    assertThatThrownBy(() -> Settings.fromEnvironment(Path.of("/r"), Map.of("OSFARM_WORKERS", "0")))
        .hasMessageContaining("workers");
  }
}
