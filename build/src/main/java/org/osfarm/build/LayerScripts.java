package org.osfarm.build;

import java.nio.charset.StandardCharsets;
import java.util.Base64;

/**
 * The shell scripts run chrooted at the end of a layer (POSIX sh, as root of the build namespace).
 * User text reaches the shell only base64-encoded, so a spec cannot inject commands outside its own
 * scripts. Every layer ends by removing per-instance identity (SSH host keys, machine-id) and
 * installing {@code osfarm-firstboot.service}, which recreates it on an instance's first boot: a
 * cached image delivered twice boots as two machines.
 */
final class LayerScripts {
  private LayerScripts() {}

  private static String b64(String s) {
    return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
  }

  private static String write(String path, String mode, String content) {
    return "mkdir -p \"$(dirname '"
        + path
        + "')\"\necho '"
        + b64(content)
        + "' | base64 -d > '"
        + path
        + "'\nchmod "
        + mode
        + " '"
        + path
        + "'\n";
  }

  static String script(BuildPlan plan, LayerKind kind) {
    ImageSpec s = plan.spec();
    StringBuilder sb = new StringBuilder("set -e\nexport DEBIAN_FRONTEND=noninteractive\n");
    if (kind == LayerKind.IMAGE) {
      for (ImageSpec.FileSpec f : s.files()) {
        if (f.path().contains("'")) {
          throw new SpecException("file path must not contain a quote: " + f.path());
        }
        sb.append(write(f.path(), f.mode(), f.content()));
      }
      if (s.rootPassword() != null) {
        sb.append("echo '")
            .append(b64("root:" + s.rootPassword() + "\n"))
            .append("' | base64 -d | chpasswd\n");
      }
      if (s.rootPasswordHash() != null) {
        sb.append("echo '")
            .append(b64("root:" + s.rootPasswordHash() + "\n"))
            .append("' | base64 -d | chpasswd -e\n");
      }
      for (ImageSpec.User u : s.users()) {
        String n = u.name(); // validated by the parser: [a-z_][a-z0-9_-]*
        sb.append("id -u ")
            .append(n)
            .append(" >/dev/null 2>&1 || useradd -m -s /bin/bash ")
            .append(n)
            .append('\n');
        if (u.sudo()) {
          sb.append("getent group sudo >/dev/null || groupadd sudo\nusermod -aG sudo ")
              .append(n)
              .append('\n');
        }
        if (u.password() != null) {
          sb.append("echo '")
              .append(b64(n + ":" + u.password() + "\n"))
              .append("' | base64 -d | chpasswd\n");
        }
        if (u.passwordHash() != null) {
          sb.append("echo '")
              .append(b64(n + ":" + u.passwordHash() + "\n"))
              .append("' | base64 -d | chpasswd -e\n");
        }
        if (!u.sshKeys().isEmpty()) {
          String home = "/home/" + n;
          sb.append(
              write(home + "/.ssh/authorized_keys", "0600", String.join("\n", u.sshKeys()) + "\n"));
          sb.append("chmod 0700 ")
              .append(home)
              .append("/.ssh\nchown -R ")
              .append(n)
              .append(':')
              .append(n)
              .append(' ')
              .append(home)
              .append("/.ssh\n");
        }
      }
      if (s.hostname() != null) {
        if (!s.hostname().matches("[A-Za-z0-9][A-Za-z0-9.-]{0,252}")) {
          throw new SpecException("invalid hostname '" + s.hostname() + "'");
        }
        sb.append("echo ").append(s.hostname()).append(" > /etc/hostname\n");
        sb.append("printf '127.0.0.1 localhost\\n127.0.1.1 %s\\n' ")
            .append(s.hostname())
            .append(" > /etc/hosts\n");
      }
      int i = 0;
      for (ImageSpec.Script x : s.scripts()) {
        String p = "/tmp/osfarm-script-" + i++;
        sb.append(write(p, "0755", x.content()));
        sb.append("echo 'osfarm: running script ").append(b64(x.name())).append("' >&2\n");
        sb.append(p).append("\nrm -f ").append(p).append('\n');
      }
    } else if (kind == LayerKind.APPLIANCE) {
      int i = 10;
      for (ImageSpec.Script x : s.firstBoot()) {
        String name = x.name().replaceAll("[^A-Za-z0-9_-]", "_");
        sb.append(write("/etc/osfarm/firstboot.d/" + i++ + "-" + name, "0755", x.content()));
      }
      for (String svc : s.services()) {
        if (!svc.matches("[A-Za-z0-9@._-]+")) {
          throw new SpecException("invalid service name '" + svc + "'");
        }
        sb.append("systemctl enable ").append(svc).append('\n');
      }
    }
    if (kind != LayerKind.IMAGE && kind != LayerKind.APPLIANCE) {
      sb.append("echo localhost > /etc/hostname\n");
    } else if (s.hostname() == null) {
      sb.append("echo localhost > /etc/hostname\n");
    }
    sb.append(RESET);
    return sb.toString();
  }

  static final String FIRSTBOOT =
      """
      #!/bin/sh
      # osfarm first boot: give this instance its own identity, then run the image's first-boot
      # scripts (/etc/osfarm/firstboot.d). systemd itself makes a new /etc/machine-id (it is empty).
      if command -v ssh-keygen >/dev/null 2>&1 && [ -d /etc/ssh ]; then ssh-keygen -A; fi
      mkdir -p /var/lib/osfarm
      touch /var/lib/osfarm/firstboot-done
      for s in /etc/osfarm/firstboot.d/*; do
        [ -x "$s" ] && "$s"
      done
      exit 0
      """;

  static final String UNIT =
      """
      [Unit]
      Description=osfarm first-boot personalization
      ConditionPathExists=!/var/lib/osfarm/firstboot-done
      After=local-fs.target
      Before=ssh.service sshd.service

      [Service]
      Type=oneshot
      ExecStart=/usr/lib/osfarm/firstboot
      RemainAfterExit=yes
      StandardOutput=journal+console

      [Install]
      WantedBy=multi-user.target
      """;

  static final String RESET =
      "# per-instance identity is made on first boot, never shipped\n"
          + "rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub /var/lib/dbus/machine-id\n"
          + "if [ -e /etc/machine-id ]; then : > /etc/machine-id; fi\n"
          + "if [ -d /usr/lib/systemd/system ] || [ -d /lib/systemd/system ]; then\n"
          + write("/usr/lib/osfarm/firstboot", "0755", FIRSTBOOT)
          + write("/etc/systemd/system/osfarm-firstboot.service", "0644", UNIT)
          + "mkdir -p /etc/systemd/system/multi-user.target.wants\n"
          + "ln -sf /etc/systemd/system/osfarm-firstboot.service"
          + " /etc/systemd/system/multi-user.target.wants/osfarm-firstboot.service\n"
          + "fi\n";
}
