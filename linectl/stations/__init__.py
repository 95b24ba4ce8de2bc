"""Station procedures and judgement: brake, headlamp, emission; limits from config/limits."""
