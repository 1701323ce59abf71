/**
 * FlexGen offloading (Sheng et al., ICML 2023): weights, KV cache and activations placed across GPU memory, pinned
 * CPU memory and disk by a cost model and a linear program ({@code policy}), and a zig-zag block schedule that
 * overlaps the tiers' I/O with compute ({@code exec}).
 */
package dev.tandem.offload;
