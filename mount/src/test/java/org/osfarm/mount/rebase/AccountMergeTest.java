package org.osfarm.mount.rebase;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.osfarm.mount.rebase.AccountMerge.Kind;
import org.osfarm.mount.rebase.AccountMerge.Outcome;

/** The record merge of passwd, group, shadow and gshadow on small inputs. */
class AccountMergeTest {
  private static String lines(String... l) {
    return String.join("\n", l) + "\n";
  }

  private static final String BASE_PASSWD =
      lines(
          "root:x:0:0:root:/root:/bin/bash",
          "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
          "_apt:x:42:65534::/nonexistent:/usr/sbin/nologin");

  private static final String BASE_GROUP = lines("root:x:0:", "adm:x:4:", "users:x:100:");

  @Test
  void localUserWhoseIdsUpstreamNowUsesIsRemappedWithItsPrivateGroup() {
    String ontoGroup = lines("root:x:0:", "adm:x:4:", "users:x:100:bob", "bob:x:1000:");
    String localGroup = lines("root:x:0:", "adm:x:4:", "users:x:100:alice", "alice:x:1000:");
    Outcome g = AccountMerge.merge(Kind.GROUP, BASE_GROUP, localGroup, ontoGroup, Map.of());
    assertThat(g.text())
        .isEqualTo(
            lines(
                "root:x:0:", "adm:x:4:", "users:x:100:bob,alice", "bob:x:1000:", "alice:x:1001:"));
    assertThat(g.remaps()).containsExactly(new IdRemap("gid", "alice", 1000, 1001, 0));

    String ontoPasswd = BASE_PASSWD + "bob:x:1000:1000:Bob:/home/bob:/bin/bash\n";
    String localPasswd = BASE_PASSWD + "alice:x:1000:1000::/home/alice:/bin/sh\n";
    Outcome p = AccountMerge.merge(Kind.PASSWD, BASE_PASSWD, localPasswd, ontoPasswd, g.idMap());
    assertThat(p.text())
        .isEqualTo(
            BASE_PASSWD
                + "bob:x:1000:1000:Bob:/home/bob:/bin/bash\n"
                + "alice:x:1001:1001::/home/alice:/bin/sh\n");
    assertThat(p.remaps()).containsExactly(new IdRemap("uid", "alice", 1000, 1001, 0));
    assertThat(p.conflicts())
        .singleElement()
        .satisfies(
            c -> {
              assertThat(c.path()).isEqualTo("/etc/passwd");
              assertThat(c.rule()).isEqualTo("id-remap");
              assertThat(c.winner()).isEqualTo("upstream");
              assertThat(c.detail()).contains("alice", "1000", "bob", "1001");
            });
  }

  @Test
  void systemIdsAreRemappedInsideTheSystemRangeFromTheTop() {
    String onto = BASE_PASSWD + "upsvc:x:999:999::/nonexistent:/usr/sbin/nologin\n";
    String local =
        BASE_PASSWD
            + "localsvc:x:999:65534::/var/lib/localsvc:/usr/sbin/nologin\n"
            + "other:x:998:65534::/:/bin/false\n";
    Outcome p = AccountMerge.merge(Kind.PASSWD, BASE_PASSWD, local, onto, Map.of());
    // 999 is upstream's, 998 is another local user's: 997
    assertThat(p.text()).contains("localsvc:x:997:65534:", "other:x:998:", "upsvc:x:999:");
    assertThat(p.remaps()).containsExactly(new IdRemap("uid", "localsvc", 999, 997, 0));
  }

  @Test
  void sameNameAddedOnBothSidesKeepsUpstreamsIdAndRemapsTheLocalOne() {
    String onto = BASE_PASSWD + "web:x:1000:1000::/srv/web:/bin/sh\n";
    String local = BASE_PASSWD + "web:x:1002:1002::/home/web:/bin/bash\n";
    Outcome p = AccountMerge.merge(Kind.PASSWD, BASE_PASSWD, local, onto, Map.of(1002L, 1000L));
    // id and (remapped) group follow upstream; home and shell were added on both sides: local
    assertThat(p.text()).contains("web:x:1000:1000::/home/web:/bin/bash\n");
    assertThat(p.remaps()).containsExactly(new IdRemap("uid", "web", 1002, 1000, 0));
    assertThat(p.conflicts()).extracting(Conflict::rule).contains("id-remap", "account-merge");
    assertThat(p.conflicts())
        .filteredOn(c -> c.rule().equals("account-merge"))
        .singleElement()
        .satisfies(c -> assertThat(c.detail()).contains("web", "home", "shell"));
  }

  private static final String BASE_SHADOW =
      lines(
          "root:$y$base$roothash:19000:0:99999:7:::",
          "daemon:*:19000:0:99999:7:::",
          "ops:$y$base$opshash:19000:0:99999:7:::",
          "dev:$y$base$devhash:19000:0:99999:7:::");

  @Test
  void passwordsLocalChangesWinUpstreamOnlyChangesApplyAndLocksAreKept() {
    String local =
        lines(
            "root:$y$local$newroot:19500:0:99999:7:::", // changed locally
            "daemon:*:19000:0:99999:7:::",
            "ops:!$y$base$opshash:19000:0:99999:7:::", // locked locally
            "dev:$y$local$devhash:19500:0:99999:7:::", // changed on both sides
            "alice:$y$local$alice:19500:0:99999:7:::"); // added locally
    String onto =
        lines(
            "root:$y$base$roothash:19000:0:99999:7:::",
            "daemon:!*:19000:0:99999:7:::", // locked upstream, untouched locally
            "ops:$y$up$opshash:19400:0:99999:7:::", // changed upstream
            "dev:$y$up$devhash:19400:0:99999:7:::",
            "bob:$y$up$bob:19400:0:99999:7:::");
    Outcome s = AccountMerge.merge(Kind.SHADOW, BASE_SHADOW, local, onto, Map.of());
    assertThat(s.text())
        .isEqualTo(
            lines(
                "root:$y$local$newroot:19500:0:99999:7:::",
                "daemon:!*:19000:0:99999:7:::",
                "ops:!$y$base$opshash:19400:0:99999:7:::",
                "dev:$y$local$devhash:19500:0:99999:7:::",
                "bob:$y$up$bob:19400:0:99999:7:::",
                "alice:$y$local$alice:19500:0:99999:7:::"));
    // ops (password) and dev (password, lastchg) were changed on both sides: reported
    assertThat(s.conflicts())
        .extracting(Conflict::detail)
        .containsExactlyInAnyOrder(
            "user ops: password changed on both sides; local value kept",
            "user dev: password, lastchg changed on both sides; local value kept");
    assertThat(s.conflicts()).allSatisfy(c -> assertThat(c.winner()).isEqualTo("local"));
    assertThat(s.remaps()).isEmpty();
  }

  @Test
  void groupMembersAreMergedAsSetsAgainstBase() {
    String base = lines("adm:x:4:syslog,ops", "sudo:x:27:ops");
    String local = lines("adm:x:4:syslog,alice", "sudo:x:27:ops,alice"); // -ops +alice, +alice
    String onto = lines("adm:x:4:syslog,ops,bob", "sudo:x:27:"); // +bob, -ops
    Outcome g = AccountMerge.merge(Kind.GROUP, base, local, onto, Map.of());
    assertThat(g.text()).isEqualTo(lines("adm:x:4:syslog,bob,alice", "sudo:x:27:alice"));
    assertThat(g.conflicts()).isEmpty();

    String gbase = lines("adm:*::syslog,ops");
    String glocal = lines("adm:*:alice:syslog,alice");
    String gonto = lines("adm:!:bob:syslog,ops,bob");
    Outcome gs = AccountMerge.merge(Kind.GSHADOW, gbase, glocal, gonto, Map.of());
    assertThat(gs.text()).isEqualTo(lines("adm:!:bob,alice:syslog,bob,alice"));
  }

  @Test
  void deletionsOnEitherSide() {
    String base = BASE_PASSWD + "old:x:1000:1000::/home/old:/bin/sh\n";
    String local = BASE_PASSWD; // local deleted "old"
    String onto =
        base.replace("daemon:x:1:1:", "daemon:x:1:1:Daemon:")
            .replace(
                "_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n", ""); // upstream deleted _apt
    Outcome p = AccountMerge.merge(Kind.PASSWD, base, local, onto, Map.of());
    assertThat(p.text()).doesNotContain("old:", "_apt:").contains("daemon:x:1:1:Daemon:");
    assertThat(p.conflicts()).isEmpty();

    // upstream deleted a user the local side changed: kept, and reported
    String local2 = base.replace("_apt:x:42:65534::", "_apt:x:42:65534:APT:");
    Outcome p2 = AccountMerge.merge(Kind.PASSWD, base, local2, onto, Map.of());
    assertThat(p2.text()).contains("_apt:x:42:65534:APT:");
    assertThat(p2.conflicts())
        .singleElement()
        .satisfies(c -> assertThat(c.detail()).contains("_apt", "deleted upstream"));
  }

  @Test
  void commentsAndUnchangedFilesSurviveExactly() {
    String onto = "# managed upstream\n" + BASE_PASSWD + "\n";
    Outcome p = AccountMerge.merge(Kind.PASSWD, BASE_PASSWD, BASE_PASSWD, onto, Map.of());
    assertThat(p.text()).isEqualTo(onto);
    assertThat(p.conflicts()).isEmpty();
  }

  @Test
  void subordinateRangesAddedOnBothSidesDoNotOverlap() {
    String base = lines("old:100000:65536");
    String local = lines("old:100000:65536", "alice:165536:65536", "carol:300000:1000");
    String onto = lines("old:100000:65536", "bob:165536:65536", "dave:231072:65536");
    Outcome u = AccountMerge.merge(Kind.SUBUID, base, local, onto, Map.of());
    // alice overlapped bob: moved to the lowest free start; carol fits and stays where she is
    assertThat(u.text())
        .isEqualTo(
            lines(
                "old:100000:65536",
                "bob:165536:65536",
                "dave:231072:65536",
                "alice:301000:65536",
                "carol:300000:1000"));
    assertThat(u.conflicts())
        .extracting(Conflict::detail)
        .singleElement()
        .asString()
        .contains("alice", "165536", "301000");
    assertThat(u.remaps()).isEmpty();
  }

  @Test
  void freeIdRanges() {
    assertThat(AccountMerge.freeId(999, -1, Set.of(999L, 998L))).isEqualTo(997);
    assertThat(AccountMerge.freeId(1000, -1, Set.of(1000L, 1001L))).isEqualTo(1002);
    assertThat(AccountMerge.freeId(1000, 1005, Set.of(1000L))).isEqualTo(1005);
    assertThat(AccountMerge.freeId(1000, 500, Set.of(1000L))).isEqualTo(1001); // wrong range
    assertThat(AccountMerge.mergeList(null, "a,b", "b,c")).isEqualTo("b,c,a");
    assertThat(List.of(AccountMerge.parseId("12"), AccountMerge.parseId("x")))
        .containsExactly(12L, -1L);
  }
}
