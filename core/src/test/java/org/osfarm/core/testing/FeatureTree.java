package org.osfarm.core.testing;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A directory tree with everything tar can carry, made with real tools (as root): setuid, setgid
 * and sticky modes, numeric owners, symlinks, hard links (the first name sorting after the second),
 * character and block devices, a fifo, user and security.capability xattrs, a POSIX ACL (access and
 * default), a long name, non-UTF-8 names, empty files and directories, sub-second mtimes, and a
 * large file that is chunked. {@link #tar} packs it with GNU tar (pax, xattrs, ACLs).
 */
public final class FeatureTree {
  private FeatureTree() {}

  /** Creates the tree under {@code root} (which must exist and be empty). */
  public static void create(Path root) throws IOException {
    Programs.require("setfacl");
    Programs.require("setfattr");
    Programs.require("setcap");
    Programs.sh(
        root,
        String.join(
            "\n",
            "mkdir -p usr/bin etc/empty-dir tmp dev var/lib/acl",
            "printf 'hello\\n' > etc/hello",
            ": > etc/empty-file",
            "head -c 3000000 /dev/urandom > usr/big.bin",
            "printf '#!/bin/sh\\n' > usr/bin/suid && chmod 4755 usr/bin/suid",
            "printf 'x' > usr/bin/sgid && chmod 2711 usr/bin/sgid",
            "chmod 1777 tmp",
            "printf 'caps' > usr/bin/pinger && setcap cap_net_raw+ep usr/bin/pinger",
            "printf 'shared' > z-first && ln z-first a-second",
            "ln -s ../etc/hello usr/hello-link",
            "ln -s /etc/passwd abs-link",
            "ln -s dangling-target dangling",
            "mknod dev/null c 1 3 && chmod 666 dev/null",
            "mknod dev/loop9 b 7 9",
            "mkfifo var/fifo",
            "printf 'acl' > var/lib/acl/file && setfacl -m u:1234:rw,g:4321:r var/lib/acl/file",
            "setfacl -d -m u:1234:rwx var/lib/acl",
            "setfattr -n user.note -v 'a note' etc/hello",
            "setfattr -n user.bin -v 0x00ff10 etc/empty-file",
            "long=$(printf 'd%.0s' $(seq 1 120)); mkdir -p \"deep/$long\" && printf 'l' > \"deep/$long/$(printf 'f%.0s' $(seq 1 150))\"",
            "printf 'latin1' > \"$(printf 'caf\\xe9')\"",
            "mkdir \"$(printf 'dir\\xff')\" && printf 'in' > \"$(printf 'dir\\xff')/x\"",
            "printf 'owned' > etc/owned && chown 1001:2002 etc/owned",
            "chown 65534:65534 var",
            "printf 'spaces' > 'name with spaces'",
            "touch -d '2001-02-03 04:05:06.123456789' etc/hello",
            "touch -h -d '1999-01-01 00:00:00' usr/hello-link",
            "touch -d '2010-01-01 00:00:00.5' usr/bin"));
  }

  /** Packs {@code root} into a pax tar with GNU tar, as mmdebstrap does. */
  public static void tar(Path root, Path tar) throws IOException {
    Programs.run(
        root,
        "tar",
        "--format=pax",
        "--xattrs",
        "--xattrs-include=*",
        "--acls",
        "--numeric-owner",
        "--sort=name",
        "-cf",
        tar.toString(),
        ".");
  }
}
