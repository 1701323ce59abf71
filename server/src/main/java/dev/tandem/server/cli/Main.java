package dev.tandem.server.cli;

import dev.tandem.core.format.ModelFormatException;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/** `tandem` command-line entry point: dispatches to one subcommand and turns user errors into messages. */
public final class Main {
    private Main() {}

    static final String HELP = """
            usage: tandem <command> [options]

            commands:
              generate     generate text from a prompt            (tandem generate --model PATH --prompt TEXT)
              serve        OpenAI-compatible HTTP server          (tandem serve --model PATH [--port 8000] [--design split --prompt-workers N --token-workers M])
              worker       one worker process of a split cluster   (tandem worker --role prompt|token|mixed --model PATH --port P [--etcd URL])
              router       front of a cluster of worker processes (tandem router --model PATH --port P (--etcd URL | --workers H:P,...))
              tokenize     print the token ids of a text          (tandem tokenize --model PATH TEXT)
              convert      write a model as GGUF                  (tandem convert --model PATH --to gguf --type q8_0 --out FILE)
              bench        llama-bench-like throughput table      (tandem bench generate --model PATH [-p 512] [-n 128] [-r 5])
                           load test of an OpenAI-compatible server (tandem bench serve --url URL --tokenizer PATH --trace FILE.csv --rate R)
                           HTTP server overhead on a 1-token completion (tandem bench overhead --model PATH)
                           cluster simulator at scale (tandem bench simulate [--requests 1000000] [--machines 1000])
                           decode and prefill step times on a device    (tandem bench steps --model PATH --device cuda)
                           Splitwise hand-over cost, split vs colocated (tandem bench handover --model PATH [-p 256])
                           offloaded throughput, FlexGen's benchmark   (tandem bench offload --model PATH|SHAPE --offload POLICY --gpu-mem 16GiB)
              init-random  write a seeded random-weight model     (tandem init-random --config llama3-8b --dtype bf16 --seed 1 --out DIR|FILE.gguf)
              logits       dump every position's logits (f32)     (tandem logits --model PATH --ids 0,5,7 --out FILE)
              perplexity   perplexity on a text file, optionally 4-bit (tandem perplexity --model PATH --text FILE [--compress-weights] [--compress-kv] [--max-tokens N])
              simulate     discrete-event cluster simulation      (tandem simulate --design splitwise-hh --prompt-machines 25 --token-machines 15 --rate 60)
                           or from a config file                  (tandem simulate --config sim/configs/splitwise-hh.yaml)
              plan-cluster provision pool sizes and GPU types      (tandem plan-cluster --model llama2-70b --trace conv --objective max-throughput --power-budget 1760)
              profile      measure a GPU profile for the simulator   (tandem profile --model PATH --device cuda --out FILE.csv)
              generate-batch  offloaded batch job, FlexGen's schedule (tandem generate-batch --model PATH --input IN.jsonl --output OUT.jsonl --offload POLICY)
              plan-offload FlexGen policy search: placement over GPU / CPU / disk, batching, predicted tokens/s
                           (tandem plan-offload --model PATH|opt-30b --gpu-mem 16GiB --cpu-mem 200GiB --disk-mem 1.5TB [--compress] [--hardware NAME|FILE])
              calibrate    measure the offloading cost model's constants on this machine (tandem calibrate [--device cuda[:N]] [--disk-dir DIR] --out FILE)
              test         build and run the test suite (handled by the ./tandem launcher)

            run `tandem <command> --help` for a command's options.
            """;

    public static void main(String[] argv) {
        System.setOut(new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false, StandardCharsets.UTF_8));
        System.exit(run(argv));
    }

    public static int run(String[] argv) {
        if (argv.length == 0 || argv[0].equals("help") || argv[0].equals("--help") || argv[0].equals("-h")) {
            System.out.print(HELP);
            return argv.length == 0 ? 2 : 0;
        }
        String[] rest = Arrays.copyOfRange(argv, 1, argv.length);
        try {
            return switch (argv[0]) {
                case "generate" -> new GenerateCommand().run(rest);
                case "serve" -> new ServeCommand().run(rest);
                case "worker" -> new WorkerCommand().run(rest);
                case "router" -> new RouterCommand().run(rest);
                case "tokenize" -> new TokenizeCommand().run(rest);
                case "convert" -> new ConvertCommand().run(rest);
                case "bench" -> new BenchCommand().run(rest);
                case "init-random" -> new InitRandomCommand().run(rest);
                case "logits" -> new LogitsCommand().run(rest);
                case "perplexity" -> new PerplexityCommand().run(rest);
                case "simulate" -> new SimulateCommand().run(rest);
                case "plan-cluster" -> new PlanClusterCommand().run(rest);
                case "profile" -> new ProfileCommand().run(rest);
                case "generate-batch" -> new GenerateBatchCommand().run(rest);
                case "plan-offload" -> new PlanOffloadCommand().run(rest);
                case "calibrate" -> new CalibrateCommand().run(rest);
                default -> {
                    System.err.println("tandem: unknown command '" + argv[0] + "'\n\n" + HELP);
                    yield 2;
                }
            };
        } catch (Args.UsageException e) {
            System.err.println("tandem " + e.getMessage());
            return 2;
        } catch (ModelFormatException e) {
            System.err.println("tandem: " + e.getMessage());
            return 1;
        } catch (IllegalArgumentException | IllegalStateException e) {
            System.err.println("tandem " + argv[0] + ": " + e.getMessage());
            return 1;
        } catch (java.io.IOException | java.io.UncheckedIOException e) {
            System.err.println("tandem " + argv[0] + ": I/O error: " + e.getMessage());
            return 1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            System.err.println("tandem " + argv[0] + ": interrupted");
            return 1;
        } catch (Exception e) {
            System.err.println("tandem " + argv[0] + ": " + e);
            return 1;
        }
    }
}
