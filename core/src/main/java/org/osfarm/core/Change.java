package org.osfarm.core;

import java.util.List;

/**
 * One difference between two snapshots.
 *
 * @param kind 'A' added, 'D' removed, 'M' changed
 * @param path the path from the image root
 * @param what for 'M', what changed (e.g. "content", "mode 0644->0755")
 */
public record Change(char kind, byte[] path, List<String> what) {}
