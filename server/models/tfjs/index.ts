/** TF.js layers model → ONNX conversion, and the shipped @upscalerjs ESRGAN models. */
export { convertTfjsLayersModel, convertTfjsLayersModelDetailed, type ConvertOptions, type ConvertResult } from './convert.ts';
export { SHIPPED_MODELS, ensureShippedModel, findShippedModel, shippedModelJsonPath, type ShippedModel } from './shipped.ts';
