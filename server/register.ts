/**
 * Import first in Node entry points (CLI, server) that may train tfjs heads: tfjs-core's Node bundle lacks the
 * gradients training needs, so tfjs is loaded as its ES build through the runtime's module hooks.
 */
import { prepareTfForNode } from '../src/runtime/heads/tf-node.ts';

prepareTfForNode();
