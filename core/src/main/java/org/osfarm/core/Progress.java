package org.osfarm.core;

/**
 * Progress of a long operation, emitted to a {@link ProgressListener} (the core never prints).
 *
 * @param phase what is happening ("reading", "writing trees", "exporting", ...)
 * @param entries entries processed so far
 * @param bytes bytes processed so far
 * @param totalBytes total bytes expected, or -1 if unknown
 * @param newBytes bytes newly stored so far (publish)
 */
public record Progress(String phase, long entries, long bytes, long totalBytes, long newBytes) {}
