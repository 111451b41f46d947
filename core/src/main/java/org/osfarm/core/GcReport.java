package org.osfarm.core;

/** What gc removed and kept. */
public record GcReport(long reachableObjects, long objectsRemoved, long bytesFreed) {}
