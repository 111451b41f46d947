package org.osfarm.mount;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/** {@code osfarm umount}: the overlay first (if writable), then the FUSE view under it. */
public final class Unmount {
  private Unmount() {}

  /**
   * Unmounts the osfarm mount on {@code mountpoint}. The process serving it notices and exits.
   *
   * @throws IOException when nothing osfarm mounted is there, or the mount is busy
   */
  public static void run(Path mountpoint) throws IOException {
    Path mp = mountpoint.toAbsolutePath().normalize();
    MountTable.Mount top = MountTable.top(mp);
    if (top == null) {
      throw new IOException(mp + " is not mounted");
    }
    if (top.type().equals("overlay")) {
      String lower = top.option("lowerdir");
      if (lower == null || !MountTable.isMounted(Path.of(lower), MountTable.FUSE_TYPE)) {
        throw new IOException(mp + " is an overlay, but not one osfarm mounted; use umount(8)");
      }
      unmount(List.of("umount", mp.toString()), mp);
      unmount(List.of("fusermount3", "-u", lower), Path.of(lower));
      return;
    }
    if (!top.type().equals(MountTable.FUSE_TYPE)) {
      throw new IOException(mp + " is a " + top.type() + " mount, not an osfarm mount");
    }
    unmount(List.of("fusermount3", "-u", mp.toString()), mp);
  }

  private static void unmount(List<String> cmd, Path mp) throws IOException {
    try {
      Mount.run(cmd, "unmount " + mp);
    } catch (IOException e) {
      String m = String.valueOf(e.getMessage());
      if (m.contains("busy")) {
        throw new IOException(
            mp
                + " is busy: a process still uses it (see 'fuser -vm "
                + mp
                + "'); stop it and try again",
            e);
      }
      throw e;
    }
  }
}
