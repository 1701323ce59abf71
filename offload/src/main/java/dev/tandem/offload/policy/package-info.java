/**
 * FlexGen's policy search. {@link dev.tandem.offload.policy.ModelShape} (sizes of a model) and
 * {@link dev.tandem.offload.policy.HardwareProfile} (capacities and rates of a machine) feed the
 * {@link dev.tandem.offload.policy.CostModel}, which predicts an {@link dev.tandem.offload.policy.Estimate} for any
 * {@link dev.tandem.offload.policy.OffloadPolicy}; {@link dev.tandem.offload.policy.PolicySearch} finds the best policy
 * with one linear program per batch shape:
 * <pre>
 * CostModel cost = new CostModel(ModelShape.resolve("opt-30b"), HardwareProfile.resolve("h200").withMemory(gpu, cpu, disk), 512, 32);
 * OffloadPolicy policy = new PolicySearch(cost, PolicySearch.Options.defaults(false).withMaxSequences(n)).search().policy();
 * </pre>
 */
package dev.tandem.offload.policy;
