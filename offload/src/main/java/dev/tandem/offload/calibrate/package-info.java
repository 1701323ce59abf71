/**
 * Measures a {@link dev.tandem.offload.policy.HardwareProfile} on this machine ({@code tandem calibrate}): disk
 * ({@link dev.tandem.offload.calibrate.DiskProbe}), host-GPU copies ({@link dev.tandem.offload.calibrate.TransferProbe}),
 * matmul and attention on any backend ({@link dev.tandem.offload.calibrate.BackendProbe}), put together by
 * {@link dev.tandem.offload.calibrate.Calibration}.
 */
package dev.tandem.offload.calibrate;
