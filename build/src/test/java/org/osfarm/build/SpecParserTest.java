package org.osfarm.build;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class SpecParserTest {
  static final String XML =
      """
      <image name="web" class="debian-bookworm" arch="amd64">
        <groups><group>core</group><group>base</group></groups>
        <package>python3</package>
        <package>openssh-server</package>
        <rootPassword>secret</rootPassword>
        <user name="alice" sudo="true"><sshKey>ssh-ed25519 AAAA alice@x</sshKey></user>
        <hostname>web1</hostname>
        <file path="/etc/motd" mode="0644">hello</file>
        <script name="touch">touch /etc/built</script>
        <kernel>true</kernel>
        <service>ssh</service>
      </image>
      """;

  static final String YAML =
      """
      name: web
      class: debian-bookworm
      arch: amd64
      groups: [base, core]
      packages: [openssh-server, python3]
      rootPassword: secret
      users:
        - {name: alice, sudo: true, sshKeys: ["ssh-ed25519 AAAA alice@x"]}
      hostname: web1
      files:
        - {path: /etc/motd, mode: "0644", content: hello}
      scripts:
        - {name: touch, content: touch /etc/built}
      kernel: true
      services: [ssh]
      """;

  @Test
  void xmlYamlAndJsonGiveTheSameNormalizedSpec() {
    ImageSpec x = SpecParser.parse(XML, SpecParser.Syntax.XML, "x").normalized();
    ImageSpec y = SpecParser.parse(YAML, SpecParser.Syntax.YAML, "y").normalized();
    String json = Canonical.json(y);
    ImageSpec j =
        SpecParser.parse(
                json.replace("\"className\"", "\"class\"")
                    .replace("\"firstBoot\":[],", "")
                    .replace(",\"firstBoot\":[]", ""),
                SpecParser.Syntax.JSON,
                "j")
            .normalized();
    assertThat(x).isEqualTo(y);
    assertThat(j.packages()).isEqualTo(y.packages());
    assertThat(x.packages()).containsExactly("openssh-server", "python3");
    assertThat(x.users().getFirst().sshKeys()).containsExactly("ssh-ed25519 AAAA alice@x");
    assertThat(x.files().getFirst().content()).isEqualTo("hello");
    assertThat(x.kernel()).isTrue();
  }

  @Test
  void malformedXmlNamesTheLine() {
    assertThatThrownBy(
            () ->
                SpecParser.parse(
                    "<image class=\"x\">\n<package>a</pack>\n", SpecParser.Syntax.XML, "s.xml"))
        .isInstanceOf(SpecException.class)
        .hasMessageContaining("s.xml: malformed XML at line 2");
  }

  @Test
  void rootPasswordHashIsACryptHashAndExclusive() {
    String h =
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
    ImageSpec s =
        SpecParser.parse("class: a\nrootPasswordHash: '" + h + "'\n", SpecParser.Syntax.YAML, "s");
    assertThat(s.rootPasswordHash()).isEqualTo(h);
    assertThat(s.rootPassword()).isNull();
    String script =
        LayerScripts.script(new BuildPlan(s, null, "amd64", java.util.List.of()), LayerKind.IMAGE);
    assertThat(script)
        .contains("| base64 -d | chpasswd -e")
        .contains(
            java.util.Base64.getEncoder()
                .encodeToString(
                    ("root:" + h + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    assertThatThrownBy(
            () ->
                SpecParser.parse(
                    "class: a\nrootPassword: x\nrootPasswordHash: '" + h + "'\n",
                    SpecParser.Syntax.YAML,
                    "s"))
        .isInstanceOf(SpecException.class)
        .hasMessageContaining("not both");
    assertThatThrownBy(
            () ->
                SpecParser.parse(
                    "class: a\nrootPasswordHash: 'root:x'\n", SpecParser.Syntax.YAML, "s"))
        .isInstanceOf(SpecException.class)
        .hasMessageContaining("openssl passwd -6");
  }

  @Test
  void userPasswordHashIsSetWithChpasswdE() {
    String h =
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
    ImageSpec s =
        SpecParser.parse(
            "class: a\nusers:\n  - name: alice\n    passwordHash: '" + h + "'\n",
            SpecParser.Syntax.YAML,
            "s");
    assertThat(s.users().getFirst().passwordHash()).isEqualTo(h);
    assertThat(s.users().getFirst().password()).isNull();
    String script =
        LayerScripts.script(new BuildPlan(s, null, "amd64", java.util.List.of()), LayerKind.IMAGE);
    assertThat(script)
        .contains("| base64 -d | chpasswd -e")
        .contains(
            java.util.Base64.getEncoder()
                .encodeToString(
                    ("alice:" + h + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    assertThatThrownBy(
            () ->
                SpecParser.parse(
                    "class: a\nusers:\n  - name: alice\n    password: x\n    passwordHash: '"
                        + h
                        + "'\n",
                    SpecParser.Syntax.YAML,
                    "s"))
        .isInstanceOf(SpecException.class)
        .hasMessageContaining("not both");
    assertThatThrownBy(
            () ->
                SpecParser.parse(
                    "class: a\nusers:\n  - name: alice\n    passwordHash: plain\n",
                    SpecParser.Syntax.YAML,
                    "s"))
        .isInstanceOf(SpecException.class)
        .hasMessageContaining("alice");
  }

  @Test
  void unknownFieldIsAnError() {
    assertThatThrownBy(
            () -> SpecParser.parse("class: a\npakages: [x]\n", SpecParser.Syntax.YAML, "s"))
        .isInstanceOf(SpecException.class)
        .hasMessageContaining("unknown field 'pakages'");
  }

  @Test
  void relativeFilePathIsAnError() {
    assertThatThrownBy(
            () ->
                SpecParser.parse(
                    "class: a\nfiles: [{path: etc/x, content: y}]\n", SpecParser.Syntax.YAML, "s"))
        .isInstanceOf(SpecException.class)
        .hasMessageContaining("must be absolute");
  }

  @Test
  void classesAreDataWithGroups() {
    ClassRegistry r = ClassRegistry.builtIn();
    assertThat(r.all().stream().map(DistroClass::name))
        .contains("debian-bookworm", "debian-trixie", "debian-bullseye", "ubuntu-noble");
    assertThat(r.get("debian-bookworm").architectures()).contains("amd64", "i386");
    assertThat(r.get("ubuntu-noble").group("base")).contains("systemd-sysv");
    assertThatThrownBy(() -> r.get("fedora-40"))
        .isInstanceOf(SpecException.class)
        .hasMessageContaining("unknown class 'fedora-40'")
        .hasMessageContaining("debian-bookworm");
    assertThatThrownBy(() -> r.get("debian-bookworm").group("nope"))
        .hasMessageContaining("unknown group 'nope'");
  }
}
