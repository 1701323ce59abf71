package dev.tandem.cluster.policy;

import dev.tandem.engine.Role;

/** A pool policy's decision: worker {@code worker} serves as {@code newRole} from now on. */
public record RoleChange(int worker, Role from, Role to) {}
