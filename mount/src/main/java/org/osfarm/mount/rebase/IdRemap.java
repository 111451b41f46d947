package org.osfarm.mount.rebase;

/**
 * A local user or group that had to change its numeric id because the new snapshot uses the old id
 * for another name (or gives the same name another id).
 *
 * @param kind {@code uid} or {@code gid}
 * @param name the user or group name
 * @param from the id the local changes used
 * @param to the id it has now
 * @param filesReowned files of the upper directory re-owned from {@code from} to {@code to} (in a
 *     dry run: files that would be)
 */
public record IdRemap(String kind, String name, long from, long to, int filesReowned) {
  IdRemap withFiles(int n) {
    return new IdRemap(kind, name, from, to, n);
  }
}
