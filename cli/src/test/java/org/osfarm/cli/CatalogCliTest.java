package org.osfarm.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.osfarm.cli.CliTest.fails;
import static org.osfarm.cli.CliTest.ok;
import static org.osfarm.cli.CliTest.osfarm;
import static org.osfarm.cli.CliTest.publish;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.osfarm.core.testing.TestImages;

/** find, packages, diff --packages, label, overlay, provenance, derived, install, catalog. */
@Tag("slow")
class CatalogCliTest {
  @TempDir Path dir;

  @Test
  void everyCatalogCommandOnRealImages() throws Exception {
    Path repo = dir.resolve("repo");
    String min = publish(repo, TestImages.bookwormMinbase().toString(), "images/min");
    String plus = publish(repo, TestImages.bookwormMinbasePlus().toString(), "images/plus");

    String found = ok(osfarm(repo, "find", "--path", "/usr/bin/less")).out();
    assertThat(found).startsWith("images/plus " + plus + " ").contains("  usr/bin/less file ");
    assertThat(found).doesNotContain(min);
    String digest =
        found
            .lines()
            .filter(l -> l.contains("usr/bin/less"))
            .findFirst()
            .orElseThrow()
            .split(" ")[5];
    assertThat(ok(osfarm(repo, "find", "--digest", digest)).out()).contains(plus);
    assertThat(ok(osfarm(repo, "find", "--package", "less", "--path", "etc/hostname")).out())
        .contains(plus)
        .doesNotContain(min)
        .contains("var/lib/dpkg/status package less ");
    assertThat(fails(osfarm(repo, "find", "--digest", "xyz"), Main.EXIT_ERROR).err())
        .contains("64 hex digits");
    assertThat(fails(osfarm(repo, "find"), Main.EXIT_ERROR).err()).contains("nothing to find");

    String pkgs = ok(osfarm(repo, "packages", "images/min")).out();
    assertThat(pkgs).containsPattern("(?m)^dpkg +\\S+ +amd64$");
    assertThat(ok(osfarm(repo, "diff", "images/min", "images/plus", "--packages")).out())
        .containsPattern("(?m)^\\+ less \\S+$")
        .doesNotContain("- ");

    ok(osfarm(repo, "label", "images/plus", "role=web", "site=cern"));
    assertThat(ok(osfarm(repo, "label", "images/plus")).out()).isEqualTo("role=web\nsite=cern\n");
    assertThat(ok(osfarm(repo, "find", "--label", "role=w*")).out()).contains(plus);
    assertThat(fails(osfarm(repo, "label", "images/plus", "oops"), Main.EXIT_ERROR).err())
        .contains("KEY=VALUE");

    Path motd = dir.resolve("motd");
    Files.writeString(motd, "node 7\n");
    CliTest.Result o =
        ok(
            osfarm(
                repo,
                "overlay",
                "images/plus",
                "--ref",
                "hosts/n7",
                "--hostname",
                "n7",
                "--set",
                "etc/motd=" + motd,
                "--rm",
                "usr/bin/less"));
    String n7 = o.lastLine();
    assertThat(ok(osfarm(repo, "cat", "hosts/n7:etc/hostname")).stdout())
        .isEqualTo("n7\n".getBytes());
    assertThat(ok(osfarm(repo, "provenance", "hosts/n7")).out())
        .contains("meta     derived-from: " + plus)
        .contains("base     " + plus + " images/plus");
    assertThat(ok(osfarm(repo, "derived", "images/plus")).out())
        .contains("base " + n7 + " hosts/n7");
    assertThat(
            fails(
                    osfarm(repo, "overlay", "images/plus", "--ref", "hosts/x", "--rm", "nope"),
                    Main.EXIT_ERROR)
                .err())
        .contains("no such path");

    String before = ok(osfarm(repo, "find", "--name", "*.conf", "--label", "role=*")).out();
    assertThat(before).contains(plus);
    assertThat(ok(osfarm(repo, "catalog", "rebuild")).err()).contains("rebuilt: ");
    assertThat(ok(osfarm(repo, "find", "--name", "*.conf", "--label", "role=*")).out())
        .isEqualTo(before);

    CliTest.Result first = ok(osfarm(repo, "install", "images/min", "hello", "--ref", "i/min"));
    assertThat(first.err()).contains("installed");
    String clone =
        ok(osfarm(repo, "overlay", "images/min", "--ref", "hosts/m1", "--hostname", "m1"))
            .lastLine();
    CliTest.Result second = ok(osfarm(repo, "install", "hosts/m1", "hello", "--ref", "i/m1"));
    assertThat(second.err()).contains("from the memo");
    assertThat(ok(osfarm(repo, "packages", "i/m1")).out()).containsPattern("(?m)^hello ");
    assertThat(ok(osfarm(repo, "find", "--package", "hello", "--latest")).out())
        .contains("i/m1")
        .contains("i/min")
        .doesNotContain(clone + " ");
  }
}
