/** The catalog: a queryable, rebuildable index of what every snapshot holds. */
package org.osfarm.catalog;
